"""Backups of a project, consistent while it is in use (``crackal serve``, a round), and their
restore.

``backup(project, out)`` copies ``project.db`` with SQLite's online backup API (a snapshot of
one moment, taken without stopping the writers), then the files that snapshot names: every
label file of the history, the folders of its rounds (``rounds/NNN/``: checkpoints, the stop
set), and images kept inside the project. A label written after the snapshot is not named by it
and not copied, and a named label file is never changed once recorded, so the copy is the
project as it was at the snapshot. It is written under a temporary name and renamed to ``out``
when complete, with ``manifest.json``: counts, each file's size and SHA-256, and the images
outside the project, which are referenced by absolute path and not copied.

``restore(backup, project)`` checks every checksum first, then copies the files into a new
folder (renamed into place when complete; an existing project is replaced only with
``force``), and ends every session and lease of the copy (its users sign in again). Paths inside
a project are stored relative to it, so the restored project works at its new path; images
outside it must be at their recorded absolute paths: those missing are named in the result.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from crackal.active.lock import project_lock
from crackal.active.store import SCHEMA_VERSION, ProjectStore
from crackal.errors import CrackalError

MANIFEST = "manifest.json"
FORMAT = 1
DB = ProjectStore.DB_NAME


def _copy(source: Path, target: Path) -> dict:
    """Copy a file, hashing what is copied; returns its size and SHA-256."""
    target.parent.mkdir(parents=True, exist_ok=True)
    digest, size = hashlib.sha256(), 0
    with source.open("rb") as src, target.open("wb") as dst:
        while chunk := src.read(1 << 20):
            digest.update(chunk)
            dst.write(chunk)
            size += len(chunk)
        dst.flush()
        os.fsync(dst.fileno())
    shutil.copystat(source, target)
    return {"bytes": size, "sha256": digest.hexdigest()}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _named(db: Path) -> tuple[list[str], list[str], list[str], dict]:
    """What a database snapshot names: files inside the project (relative paths), round
    folders, paths outside the project, and counts."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        files = [row[0] for row in conn.execute("SELECT path FROM labels ORDER BY id")]
        images = conn.execute("SELECT path, truth_path, role FROM images").fetchall()
        rounds = [row[0] for row in conn.execute("SELECT round FROM rounds ORDER BY round")]
        checkpoints = [row[0] for row in conn.execute("SELECT checkpoint FROM rounds WHERE checkpoint IS NOT NULL")]
        counts = {"images": len(images), "pool": sum(role == "pool" for _, _, role in images),
                  "heldout": sum(role == "heldout" for _, _, role in images), "labels": len(files),
                  "labelled_images": conn.execute("SELECT COUNT(DISTINCT image_id) FROM labels").fetchone()[0],
                  "rounds": len(rounds), "users": conn.execute("SELECT COUNT(*) FROM users").fetchone()[0],
                  "schema_version": conn.execute("PRAGMA user_version").fetchone()[0]}
    finally:
        conn.close()
    stored = [p for path, truth, _ in images for p in (path, truth) if p]
    inside = files + [p for p in stored + checkpoints if not Path(p).is_absolute()]
    outside = sorted({p for p in stored if Path(p).is_absolute()})
    return list(dict.fromkeys(inside)), [f"rounds/{r:03d}" for r in rounds], outside, counts


def _partial(target: Path, kind: str) -> Path:
    """A temporary sibling of ``target``, renamed to it when complete."""
    return target.parent / f".{target.name}.{kind}-{secrets.token_hex(4)}"


def backup(project: str | Path, out: str | Path) -> dict:
    """Back up ``project`` into the new folder ``out`` (see the module docstring); returns the
    manifest (counts, files, ``missing``: files the database names that were not there)."""
    project, out = Path(project), Path(out)
    ProjectStore(project).close()  # a clear error when it is no project; an older one is migrated
    if out.exists():
        raise CrackalError(f"{out} exists; back up into a new folder (a backup is never written over)")
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = _partial(out, "partial")
    partial.mkdir()
    try:
        source = sqlite3.connect(project / DB, timeout=30)
        target = sqlite3.connect(partial / DB)
        try:
            source.backup(target)  # one step: a snapshot of one moment, writers go on meanwhile
            target.execute("PRAGMA journal_mode=DELETE")  # one self-contained file (a restore turns WAL on again)
        finally:
            target.close()
            source.close()
        inside, round_folders, outside, counts = _named(partial / DB)
        files: dict[str, dict] = {DB: {"bytes": (partial / DB).stat().st_size, "sha256": _sha256(partial / DB)}}
        missing = []
        for relative in inside:
            if (project / relative).is_file():
                files[relative] = _copy(project / relative, partial / relative)
            else:
                missing.append(relative)
        for folder in round_folders:
            for path in sorted((project / folder).rglob("*")) if (project / folder).is_dir() else []:
                relative = str(path.relative_to(project))
                if relative in files or not path.is_file():
                    continue
                try:
                    files[relative] = _copy(path, partial / relative)
                except FileNotFoundError:  # a round running meanwhile replaced it (a newer checkpoint)
                    continue
        manifest = {"format": FORMAT, "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
                    "source": str(project.absolute()), "counts": counts, "files": files, "missing": missing,
                    "outside": outside}
        (partial / MANIFEST).write_text(json.dumps(manifest, indent=1))
        os.replace(partial, out)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return manifest


def read_manifest(folder: str | Path) -> dict:
    """A backup's manifest; ``CrackalError`` when the folder is not a crackal backup."""
    path = Path(folder) / MANIFEST
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise CrackalError(f"{folder} is not a crackal backup (no {MANIFEST}); make one with 'crackal al backup'") from None
    except (OSError, ValueError) as exc:
        raise CrackalError(f"{path} cannot be read ({exc}); the backup is damaged") from None
    if manifest.get("format") != FORMAT:
        raise CrackalError(f"{path}: backup format {manifest.get('format')!r}, this crackal reads format {FORMAT}")
    if manifest.get("counts", {}).get("schema_version", 0) > SCHEMA_VERSION:
        raise CrackalError(f"{folder} was made by a newer crackal (database schema {manifest['counts']['schema_version']}, "
                           f"this one knows {SCHEMA_VERSION}); restore it with that version")
    return manifest


def verify(folder: str | Path) -> dict:
    """Check every file of a backup against its manifest; returns the manifest, or raises
    ``CrackalError`` naming the files that are missing or differ."""
    folder = Path(folder)
    manifest = read_manifest(folder)
    bad = []
    for relative, expected in manifest["files"].items():
        path = folder / relative
        if not path.is_file():
            bad.append(f"{relative} (missing)")
        elif path.stat().st_size != expected["bytes"] or _sha256(path) != expected["sha256"]:
            bad.append(f"{relative} (differs from its checksum)")
    if bad:
        raise CrackalError(f"the backup in {folder} is damaged: {len(bad)} file{'s' if len(bad) > 1 else ''} "
                           f"{', '.join(bad[:5])}{' ...' if len(bad) > 5 else ''}; nothing restored. Restore another backup")
    return manifest


def restore(backup_folder: str | Path, project: str | Path, force: bool = False) -> dict:
    """Restore a backup as ``project`` (see the module docstring); returns the manifest's counts
    with ``project`` and ``missing_images``: images outside the project that are not at their
    recorded paths on this machine."""
    folder, project = Path(backup_folder), Path(project)
    manifest = verify(folder)
    occupied = project.exists() and (not project.is_dir() or any(project.iterdir()))
    if occupied and not force:
        raise CrackalError(f"{project} exists and is not empty; restore into a new folder, or pass --force (force=True) "
                           "to replace it (its current content is lost)")
    project.parent.mkdir(parents=True, exist_ok=True)
    partial = _partial(project, "restoring")
    partial.mkdir()
    try:
        for relative in manifest["files"]:
            (partial / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(folder / relative, partial / relative)
        store = ProjectStore(partial)  # migrates a backup of an older version
        with store:
            if store.conn.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
                raise CrackalError(f"the database in {folder} fails SQLite's integrity check; nothing restored")
            with store.transaction() as tx:  # a restored project starts with nobody signed in
                for table in ("sessions", "leases", "login_failures"):
                    tx.execute(f"DELETE FROM {table}")
        if occupied:
            with project_lock(project, "crackal al restore --force"):
                aside = _partial(project, "replaced")
                os.replace(project, aside)
            os.replace(partial, project)
            shutil.rmtree(aside, ignore_errors=True)
        else:
            if project.is_dir():
                project.rmdir()
            os.replace(partial, project)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    missing = [path for path in manifest["outside"] if not Path(path).is_file()]
    return {**manifest["counts"], "project": str(project), "files": len(manifest["files"]), "missing_images": missing,
            "missing_in_backup": manifest["missing"]}
