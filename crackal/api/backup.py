"""Backups of a project from Python: ``crackal al backup`` -> ``al_backup``, ``crackal al restore``
-> ``al_restore`` (see ``crackal.active.backup``)."""

from __future__ import annotations

from pathlib import Path


def al_backup(project: str | Path, out: str | Path) -> dict:
    """Back up a project into the new folder ``out``, consistent while the project is in use
    (``crackal serve``, a round): a snapshot of ``project.db`` (SQLite's online backup), the
    label files and round folders it names, and ``manifest.json`` (counts, SHA-256 of every file,
    the images outside the project, which are referenced by absolute path and not copied).
    Returns the manifest."""
    from crackal.active.backup import backup

    return backup(project, out)


def al_restore(backup: str | Path, project: str | Path, force: bool = False) -> dict:
    """Restore a backup made by ``al_backup`` as ``project`` (a new or empty folder; an existing
    project is replaced only with ``force``), after checking every checksum. Sessions and leases
    are not restored (users sign in again). Returns the counts with ``missing_images``: images
    outside the project that are not at their recorded paths on this machine."""
    from crackal.active.backup import restore

    return restore(backup, project, force)
