"""``crackal serve``: adding users, and the refusals before anything is served."""

from __future__ import annotations

import io

from crackal.active.store import ProjectStore
from crackal.app.accounts import authenticate, list_users
from crackal.cli import main
from tests.app.web_helpers import make_web_project


def test_users_are_added_from_the_command_line(tmp_path, monkeypatch, capsys):
    project = make_web_project(tmp_path / "p", count=5, size=32, initial=2, heldout=1, users=False)
    assert main(["serve", str(project)]) == 1  # nobody could sign in
    assert "no users yet" in capsys.readouterr().err
    monkeypatch.setattr("sys.stdin", io.StringIO("a-long-password\n"))
    assert main(["serve", str(project), "--add-user", "ana", "--role", "admin", "--password-stdin"]) == 0
    assert "added admin ana" in capsys.readouterr().out
    monkeypatch.setattr("sys.stdin", io.StringIO("another-password\n"))
    assert main(["serve", str(project), "--add-user", "ana", "--password-stdin"]) == 1
    assert "user ana exists; pass --replace" in capsys.readouterr().err
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert main(["serve", str(project), "--add-user", "bob", "--password-stdin"]) == 1
    assert "at least 8 characters" in capsys.readouterr().err
    monkeypatch.setattr("sys.stdin", io.StringIO("long-enough\n"))
    assert main(["serve", str(project), "--add-user", "bob", "--role", "boss", "--password-stdin"]) == 1
    assert "role must be one of labeller, admin" in capsys.readouterr().err
    monkeypatch.setattr("sys.stdin", io.StringIO("another-password\n"))
    assert main(["serve", str(project), "--add-user", "ana", "--role", "labeller", "--password-stdin", "--replace"]) == 0
    store = ProjectStore(project)
    try:
        assert [(u.name, u.role) for u in list_users(store)] == [("ana", "labeller")]
        assert authenticate(store, "ana", "another-password") and not authenticate(store, "ana", "a-long-password")
    finally:
        store.close()
    assert main(["serve", str(project), "--port", "0"]) == 1
    assert "--port must be 1..65535" in capsys.readouterr().err
    assert main(["serve", str(project), "--lease-minutes", "0"]) == 1
    assert "--lease-minutes must be > 0" in capsys.readouterr().err
    assert main(["serve", str(tmp_path / "nothing")]) == 1
    assert "no crackal project" in capsys.readouterr().err
