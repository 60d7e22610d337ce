"""The documentation stays true to the repository: every relative link of README.md and docs/
resolves (file and heading), the README stays short, and every ``crackal ...`` command shown in
a code block (of README.md and docs/) or in README.md's command table exists. Commands are
checked in-process with ``crackal.cli.main([..., "--help"])``."""

from __future__ import annotations

import re
import shutil
import subprocess
import unicodedata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").rglob("*.md"))]

FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.M | re.S)
INLINE_CODE = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.M)


def prose(text: str) -> str:
    """The text without fenced code blocks and inline code (links there are not links)."""
    return INLINE_CODE.sub("", FENCE.sub("", text))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, markup and punctuation dropped, spaces -> '-'."""
    text = re.sub(r"<[^>]+>", "", heading)
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)  # a link in a heading keeps its text
    text = text.replace("`", "").strip().lower()
    text = "".join(c for c in text if c in " -_" or unicodedata.category(c)[0] in "LN")
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every anchor of a markdown file, with GitHub's -1, -2 ... for repeated headings."""
    seen: dict[str, int] = {}
    result = set()
    for heading in HEADING.findall(FENCE.sub("", path.read_text())):
        base = slug(heading)
        count = seen.get(base, 0)
        seen[base] = count + 1
        result.add(base if count == 0 else f"{base}-{count}")
    return result


def relative_links(path: Path) -> list[str]:
    return [target for target in LINK.findall(prose(path.read_text()))
            if not re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I)]  # http:, https:, mailto: ...


def git_ignored(paths: list[Path]) -> set[Path]:
    """Which of ``paths`` git ignores (files made by a local run, absent from CI's clean
    checkout), in one call; none outside a git checkout."""
    if not paths or shutil.which("git") is None or not (ROOT / ".git").exists():
        return set()
    listed = subprocess.run(["git", "check-ignore", "--stdin"], input="\n".join(map(str, paths)), capture_output=True,
                            text=True, cwd=ROOT).stdout
    return {Path(line) for line in listed.splitlines()}


def test_there_are_pages_and_links():
    assert (ROOT / "docs").is_dir() and len(PAGES) > 5
    assert sum(len(relative_links(page)) for page in PAGES) > 20


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(page: Path):
    broken, links = [], []
    for target in relative_links(page):
        file_part, _, anchor = target.partition("#")
        links.append((target, anchor, (page.parent / file_part).resolve() if file_part else page))
    ignored = git_ignored([linked for _, _, linked in links if linked.exists()])
    for target, anchor, linked in links:
        if not linked.exists():
            broken.append(f"{target}: no such file")
        elif linked in ignored:
            broken.append(f"{target}: ignored by git, so absent from a clean checkout")
        elif anchor and linked.suffix == ".md" and anchor.lower() not in anchors(linked):
            broken.append(f"{target}: no heading #{anchor} in {linked.relative_to(ROOT)}")
    assert not broken, f"{page.relative_to(ROOT)}: " + "; ".join(broken)


def test_readme_is_short():
    lines = README.read_text().count("\n")
    assert lines < 300, f"README.md has {lines} lines; move details into docs/"


SUB_COMMAND = re.compile(r"^[a-z][a-z0-9-]*$")


def lead_words(words: list[str]) -> tuple[str, ...]:
    """The leading lowercase words (the candidates for a command path) of the words after ``crackal``."""
    lead = []
    for word in words:
        if not SUB_COMMAND.match(word):
            break
        lead.append(word)
    return tuple(lead) or tuple(w for w in words[:1] if not w.startswith("-"))  # ``crackal --help``: no command


def documented_commands() -> list[tuple[str, ...]]:
    """The distinct command candidates shown on ``crackal ...`` lines of the fenced code blocks
    of README.md (and of docs/), and in README.md's inline code such as
    ``crackal detect train / evaluate / predict`` (one command per name after a slash)."""
    commands = set()
    for page in PAGES:
        text = page.read_text()
        for block in FENCE.finditer(text):
            for line in block.group(0).splitlines()[1:-1]:
                words = line.split("#", 1)[0].split()
                if words[:1] == ["$"]:
                    words = words[1:]
                if len(words) > 1 and words[0] == "crackal":
                    commands.add(lead_words(words[1:]))
        if page == README:
            for code in INLINE_CODE.findall(prose_keep_inline(text)):
                first, *others = code.strip("`").split(" / ")
                words = first.split()
                if len(words) > 1 and words[0] == "crackal":
                    lead = lead_words(words[1:])
                    commands.add(lead)
                    commands.update((*lead[:-1], *lead_words(other.split())) for other in others)
    return sorted(c for c in commands if c)


def prose_keep_inline(text: str) -> str:
    return FENCE.sub("", text)


def exit_code(argv: list[str]) -> int:
    from crackal.cli import main

    try:
        return main(argv)
    except SystemExit as exc:  # a parser that exits instead of returning
        return exc.code if isinstance(exc.code, int) else 1


def is_command(path: list[str]) -> bool:
    """A command (not a group): an unknown extra word before --help is taken as its argument."""
    return bool(path) and exit_code([*path, "zz-not-a-subcommand", "--help"]) == 0


def test_readme_shows_commands():
    assert len(documented_commands()) >= 10


@pytest.mark.parametrize("words", documented_commands(), ids=" ".join)
def test_documented_commands_exist(words: tuple[str, ...], capsys):
    """Walk the words down the command tree: each must be a sub-command of the group before it,
    until a command is reached (the words after it are its arguments)."""
    shown = "crackal " + " ".join(words)
    path: list[str] = []
    for word in words:
        if path and is_command(path):
            break
        if exit_code([*path, word, "--help"]) != 0:
            pytest.fail(f"{shown!r}: 'crackal {' '.join([*path, word])}' is not a command")
        path.append(word)
    assert is_command(path), f"{shown!r}: 'crackal {' '.join(path)}' is a group; its sub-command is missing"
    capsys.readouterr()  # the help texts


def test_benchmark_write_docs_replaces_only_its_block(tmp_path):
    """benchmarks/_common.write_docs: tables from dicts and from header + rows, written between
    its markers; the hand-written text around the block and other blocks are kept."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_common", ROOT / "benchmarks" / "_common.py")
    common = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(common)
    page = tmp_path / "fake.md"
    page.write_text("# Fake\n\nBefore.\n\n<!-- generated by benchmarks/fake.py: begin -->\nold figures\n"
                    "<!-- generated by benchmarks/fake.py: end -->\n\nAfter.\n")

    common.write_docs("fake", "Caption.", [{"method": "a", "f1": 0.71234}, {"method": "b|c", "f1": None}],
                      (["x", "y"], [[1, "2 s"]]), command="python benchmarks/fake.py --seeds 3", date="2030-01-02",
                      hardware="a CPU", docs=tmp_path)
    text = page.read_text()
    assert text.startswith("# Fake\n\nBefore.\n\n<!-- generated by benchmarks/fake.py: begin -->")
    assert text.endswith("<!-- generated by benchmarks/fake.py: end -->\n\nAfter.\n")
    assert "old figures" not in text
    assert "Run: `python benchmarks/fake.py --seeds 3`, 2030-01-02; a CPU." in text
    assert "| method | f1 |\n| --- | --- |\n| a | 0.712 |\n| b\\|c | - |" in text
    assert "| x | y |\n| --- | --- |\n| 1 | 2 s |" in text

    common.write_docs("fake", [{"a": 1}], block="other", command="c", date="d", docs=tmp_path)
    common.write_docs("fake", [{"a": 2}], command="c", date="d", docs=tmp_path)  # the first block again
    text = page.read_text()
    assert text.count("generated by benchmarks/fake.py: begin") == 1
    assert text.count("generated by benchmarks/fake.py (other): begin") == 1
    assert "| 2 |" in text and "| 1 |" in text and "0.712" not in text and "After." in text

    common.write_docs("new", [{"a": 3}], command="c", date="d", docs=tmp_path)
    assert (tmp_path / "new.md").read_text().startswith("# benchmarks/new.py\n\n<!-- generated by benchmarks/new.py: begin -->")


def test_every_benchmark_page_has_a_generated_block():
    scripts = sorted(p.stem for p in (ROOT / "benchmarks").glob("*.py") if not p.stem.startswith("_"))
    for name in scripts:
        page = ROOT / "docs" / "benchmarks" / f"{name}.md"
        assert page.is_file(), f"no docs page for benchmarks/{name}.py"
        assert f"<!-- generated by benchmarks/{name}.py" in page.read_text(), f"{page.name}: no generated block"
        assert f'write_docs("{name}"' in (ROOT / "benchmarks" / f"{name}.py").read_text(), f"{name}.py does not call write_docs"
