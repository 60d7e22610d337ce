"""A labelling project survives old formats, moves, kills and concurrent writers, and never
overwrites a person's labels without being asked."""

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

from crackal.active.config import ALConfig
from crackal.active.labels import export_queue, import_labels
from crackal.active.lock import project_lock
from crackal.active.loop import run_loop, run_round
from crackal.active.project import create_project
from crackal.active.store import ProjectStore, open_project
from crackal.cli import main
from crackal.data.layout import find_pairs
from crackal.errors import CrackalError
from tests.active.conftest import fast_config, make_project

# The database of a project made before crackal 0.2: labels in the images table, paths relative
# to the folder where 'al init' ran, the training options flat in the settings.
VERSION_1_SCHEMA = """
CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE images (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, path TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('pool', 'heldout')), truth_path TEXT, label_path TEXT, labelled_round INTEGER,
    labelled_at TEXT, labelled_by TEXT, defect_share REAL);
CREATE TABLE rounds (round INTEGER PRIMARY KEY, state TEXT NOT NULL, labelled INTEGER NOT NULL, checkpoint TEXT, metrics TEXT,
    class_weights TEXT, pool_uncertainty REAL, started_at TEXT NOT NULL, finished_at TEXT);
CREATE TABLE queue (image_id INTEGER PRIMARY KEY REFERENCES images(id), round INTEGER NOT NULL, rank INTEGER NOT NULL, score REAL);
CREATE TABLE scores (round INTEGER NOT NULL, image_id INTEGER NOT NULL REFERENCES images(id), score REAL NOT NULL,
    PRIMARY KEY (round, image_id));
"""
VERSION_1_SETTINGS = {  # a settings row as 'crackal al init' wrote it then
    "task": "segmentation", "backbone": "resnet18", "image_size": 0, "strategy": "bald", "reduction": "topk",
    "method": "mc_dropout", "iterations": 3, "ensemble_size": 3, "selection": "top", "temperature": 1.0, "batch": 3,
    "initial": 4, "cold_start": "random", "seed": 0, "class_names": ["background", "crack"], "simulation": True,
    "arch": "unet", "base_channels": 8, "depth": 2, "dropout": 0.2, "epochs": 1, "samples_per_epoch": 8, "batch_size": 4,
    "crop_size": 64, "downscale": 1, "lr": 0.003, "loss": "ce+dice", "class_weighting": "sqrt_inverse", "budget": None,
    "patience": 3, "min_delta": 0.005, "min_uncertainty": None, "cost_per_image": 0.5, "seconds_per_image": 30.0,
}


def version_1_project(workdir, data):
    """A version-1 project at workdir/old, made from workdir (relative paths), 2 images labelled."""
    os.chdir(workdir)
    pairs = find_pairs(data)
    root = workdir / "old"
    (root / "labels").mkdir(parents=True)
    conn = sqlite3.connect(root / "project.db")
    conn.executescript(VERSION_1_SCHEMA)
    conn.executemany("INSERT INTO settings VALUES (?, ?)", [(k, json.dumps(v)) for k, v in VERSION_1_SETTINGS.items()])
    for i, pair in enumerate(pairs):
        role = "pool" if i < 14 else "heldout"
        label = None
        if i < 2:
            label = f"old/labels/{pair.name}.png"
            shutil.copyfile(pair.mask, workdir / label)
        conn.execute("INSERT INTO images (id, name, path, role, truth_path, label_path, labelled_round, labelled_at, "
                     "labelled_by, defect_share) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                     (i + 1, pair.name, os.path.relpath(pair.image, workdir), role, os.path.relpath(pair.mask, workdir),
                      label, 0 if label else None, "2026-11-20T10:00:00+00:00" if label else None,
                      "ana" if label else None, 0.03 if label else None))
    conn.executemany("INSERT INTO queue VALUES (?, 0, ?, NULL)", [(3, 0), (4, 1)])
    conn.commit()
    conn.close()
    return root


def test_a_version_1_project_opens_and_continues_from_another_folder(tmp_path, al_data, monkeypatch):
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path)
    root = version_1_project(tmp_path / "work", al_data)
    monkeypatch.chdir("/")  # run from elsewhere: every path must resolve from the project itself
    store, config = open_project(root)
    assert config.query_size == 3 and config.train.epochs == 1 and config.train.crop_size == 64
    assert config.class_names == ["background", "crack"] and config.train.warmup_epochs == 0.5
    labelled = store.labelled()
    assert [r.labelled_by for r in labelled] == ["ana", "ana"] and all(r.label_path.is_file() for r in labelled)
    assert len(store.queue()) == 2 and store.label_versions(labelled[0].id) == 1
    store.close()
    result = run_round(root)
    assert result.round == 1 and result.labelled == 4 and len(result.selected) == 3
    store = ProjectStore(root)
    assert {r.labelled_by for r in store.labelled()} == {"ana", "oracle"}
    assert not os.path.isabs(store.conn.execute("SELECT checkpoint FROM rounds").fetchone()[0])
    store.close()


def test_a_moved_or_copied_project_uses_its_own_files(tmp_path, al_data, monkeypatch):
    monkeypatch.chdir(tmp_path)
    make_project(tmp_path / "p", al_data)
    run_round("p")  # made from a relative path
    shutil.copytree(tmp_path / "p", tmp_path / "copy")
    (tmp_path / "p").rename(tmp_path / "moved")
    monkeypatch.chdir("/")
    for root in (tmp_path / "copy", tmp_path / "moved"):
        store = ProjectStore(root)
        assert all(r.label_path.is_relative_to(root) for r in store.labelled())
        assert store.rounds()[0]["checkpoint"].is_relative_to(root)
        store.close()
        assert run_round(root).round == 2


def test_a_second_writer_is_refused_with_the_holder_and_a_killed_holder_is_taken_over(tmp_path, al_data):
    root = make_project(tmp_path / "p", al_data)
    code = ("import sys, time; from crackal.active.lock import project_lock\n"
            f"with project_lock({str(root)!r}, 'crackal al step (test)'):\n    print('held', flush=True); time.sleep(60)")
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": os.getcwd()})
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(CrackalError, match=rf"is busy: 'crackal al step \(test\)' \(pid {holder.pid} on .* since"):
            run_round(root)
        with pytest.raises(CrackalError, match="is busy"):
            import_labels(ProjectStore(root), al_data / "masks", 2)
        assert main(["al", "step", str(root)]) == 1
        started = time.monotonic()
        with pytest.raises(CrackalError, match="is busy"), project_lock(root, "waiting", wait=1.0):
            pass
        assert time.monotonic() - started >= 0.9
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    with project_lock(root, "after the kill"):  # the lock of a killed process is taken over at once
        assert "after the kill" in (root / ".lock").read_text()
    assert run_round(root).round == 1


def _queue_masks(root, al_data, folder, value=255):
    """Masks for the queued images (all crack where value is 255)."""
    store = ProjectStore(root)
    folder.mkdir(parents=True, exist_ok=True)
    for record, _, _ in store.queue():
        Image.fromarray(np.full((64, 64), value, np.uint8)).save(folder / f"{record.name}.png")
    store.close()


def test_relabelling_asks_for_overwrite_and_keeps_the_history(tmp_path, al_data):
    root = tmp_path / "human"
    pairs = find_pairs(al_data)
    create_project(root, [(p.name, p.image, None) for p in pairs[:14]], [(p.name, p.image, p.mask) for p in pairs[14:]],
                   fast_config(simulation=False)).close()
    _queue_masks(root, al_data, tmp_path / "ana")
    assert main(["al", "import", str(root), str(tmp_path / "ana"), "--labeller", "ana"]) == 0
    store = ProjectStore(root)
    names = [r.name for r in store.labelled()]
    store.close()
    (tmp_path / "bob").mkdir()
    for name in names:  # bob labels the same images (off the queue now) without knowing ana did
        Image.fromarray(np.zeros((64, 64), np.uint8)).save(tmp_path / "bob" / f"{name}.png")
    assert main(["al", "import", str(root), str(tmp_path / "bob"), "--labeller", "bob"]) == 1
    store = ProjectStore(root)
    assert {r.labelled_by for r in store.labelled()} == {"ana"}  # nothing changed
    store.close()
    assert main(["al", "import", str(root), str(tmp_path / "bob"), "--labeller", "bob", "--overwrite"]) == 0
    store = ProjectStore(root)
    record = store.by_name(names[0])
    history = store.label_history(record.id)
    assert [h["labelled_by"] for h in history] == ["ana", "bob"]
    assert history[0]["path"].is_file() and history[0]["path"] != history[1]["path"]
    assert np.asarray(Image.open(history[0]["path"])).max() == 255 and np.asarray(Image.open(record.label_path)).max() == 0
    store.close()


def test_two_files_for_one_image_are_refused(tmp_path, al_data):
    root = make_project(tmp_path / "p", al_data)
    store = ProjectStore(root)
    name = store.queue()[0][0].name
    folder = tmp_path / "labels"
    folder.mkdir()
    for file in (f"{name}.png", f"{name}_mask.png"):
        Image.fromarray(np.zeros((64, 64), np.uint8)).save(folder / file)
    with pytest.raises(CrackalError, match=rf"{name}.png and {name}_mask.png are both labels of {name}"):
        import_labels(store, folder, 2)
    assert not store.labelled()
    store.close()


def test_a_kill_during_a_reimport_leaves_the_old_labels_current(tmp_path, al_data, monkeypatch):
    root = make_project(tmp_path / "p", al_data)
    run_round(root)
    store = ProjectStore(root)
    labelled = {r.name: r.label_path.read_bytes() for r in store.labelled()}
    folder = tmp_path / "redo"
    folder.mkdir()
    for name in labelled:
        Image.fromarray(np.zeros((64, 64), np.uint8)).save(folder / f"{name}.png")

    def killed(*args, **kwargs):
        raise KeyboardInterrupt("killed between writing the files and recording them")

    monkeypatch.setattr(ProjectStore, "record_labels", killed)
    with pytest.raises(KeyboardInterrupt):
        import_labels(store, folder, 2, "bob", overwrite=True)
    monkeypatch.undo()
    assert {r.name: r.label_path.read_bytes() for r in store.labelled()} == labelled  # what the database names is unchanged
    assert {r.labelled_by for r in store.labelled()} == {"oracle"}
    assert import_labels(store, folder, 2, "bob", overwrite=True) == len(labelled)  # and the import can simply run again
    assert {r.labelled_by for r in store.labelled()} == {"bob"}
    store.close()


def test_export_queue_does_not_write_over_an_earlier_export(tmp_path, al_data):
    root = make_project(tmp_path / "p", al_data, simulation=False)
    store, config = open_project(root)
    out = export_queue(store, tmp_path / "q", config)
    corrected = next((out / "masks").iterdir())
    Image.fromarray(np.full((64, 64), 255, np.uint8)).save(corrected)
    with pytest.raises(CrackalError, match="already holds an exported queue"):
        export_queue(store, tmp_path / "q", config)
    assert np.asarray(Image.open(corrected)).max() == 255
    export_queue(store, tmp_path / "q", config, force=True)
    assert np.asarray(Image.open(corrected)).max() == 0
    store.close()


def test_settings_change_between_rounds(tmp_path, al_data, capsys):
    root = make_project(tmp_path / "p", al_data)
    assert main(["al", "config", str(root), "--set", "query_size=2", "--set", "train.epochs=2"]) == 0
    assert main(["al", "config", str(root), "--set", "train.crop_size=33"]) == 1
    assert "--crop-size must be a multiple of 32" in capsys.readouterr().err
    assert main(["al", "config", str(root), "--set", "colour=red"]) == 1
    assert "--set take KEY=VALUE with KEY one of" in capsys.readouterr().err
    _, config = open_project(root)
    assert config.query_size == 2 and config.train.epochs == 2 and config.train.crop_size == 64
    assert len(run_round(root).selected) == 2
    assert json.loads((root / "rounds" / "001" / "config.json").read_text())["epochs"] == 2


def test_bad_init_options_fail_before_a_project_exists(tmp_path, al_data, capsys):
    for options, message in ((["--epochs", "0"], "--epochs must be at least 1"),
                             (["--crop-size", "33"], "--crop-size must be a multiple of 32"),
                             (["--set", "train.depth=9"], "--depth must be between 1 and 6")):
        assert main(["al", "init", str(tmp_path / "p"), "--images", str(al_data), *options]) == 1
        assert message in capsys.readouterr().err
        assert not (tmp_path / "p" / "project.db").exists()


def test_duplicate_names_and_a_killed_init_leave_no_half_project(tmp_path, al_data, monkeypatch):
    pool = tmp_path / "pool"
    pool.mkdir()
    for suffix in (".png", ".jpg"):
        Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(pool / f"a{suffix}")
    held = [(p.name, p.image, p.mask) for p in find_pairs(al_data)[:2]]
    with pytest.raises(CrackalError, match="appear twice"):
        create_project(tmp_path / "p", [("a", pool / "a.png", None), ("a", pool / "a.jpg", None)], held, ALConfig())
    from crackal.active import project as project_module

    monkeypatch.setattr(project_module, "select_random", lambda *a: (_ for _ in ()).throw(KeyboardInterrupt("killed")))
    with pytest.raises(KeyboardInterrupt):
        make_project(tmp_path / "q", al_data)
    monkeypatch.undo()
    assert not (tmp_path / "q" / "project.db").exists()
    make_project(tmp_path / "q", al_data)  # a new init just works
    assert run_loop(tmp_path / "q", rounds=1) == "1 round done"
