"""The project store: one SQLite database (``project.db``) plus files under the project folder.

```
PROJECT/project.db      images, labels (every version: when, by whom), rounds, scores, the queue;
                        the web app's users (salted password hashes), sessions, leases and
                        recent failed sign-ins
PROJECT/labels/         label files (masks 0/255 or class indices, or VOC boxes): NAME.png, then
                        NAME.v2.png ... for re-labels; a file is never overwritten once recorded
PROJECT/rounds/NNN/     each round's training run (config, checkpoints, metrics) and its masks of
                        the stop set (stop_set.npz)
```

Every change is one SQLite transaction and every file is written under a new name before the
transaction that records it, so a project killed at any moment reopens consistent: no label
and no finished round is lost, and a file no row names is an unfinished write (ignored).
Paths inside the project are stored relative to it, paths outside it absolute, so a project
can be moved or copied and used from any folder.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from crackal.active.config import ALConfig
from crackal.active.effort import Effort
from crackal.errors import CrackalError

# 1: label columns in images, paths relative to the folder where 'al init' ran; 2: the labels table;
# 3: users, sessions and leases of the labelling web app (new tables only: version 2 readers ignore them)
# 4: the stop set, unlabelled pool images predicted every round for the stop advice (a new table only)
# 5: label_effort, the labelling time measured for a label (a new table only)
# 6: login_failures, the web app's sign-in throttle, kept across restarts (a new table only)
SCHEMA_VERSION = 6
SCHEMA = """
CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS images (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    path TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('pool', 'heldout')),
    truth_path TEXT
);
CREATE TABLE IF NOT EXISTS labels (
    id INTEGER PRIMARY KEY,
    image_id INTEGER NOT NULL REFERENCES images(id),
    path TEXT NOT NULL UNIQUE,
    round INTEGER NOT NULL,
    labelled_at TEXT NOT NULL,
    labelled_by TEXT NOT NULL,
    defect_share REAL
);
CREATE INDEX IF NOT EXISTS labels_of_image ON labels (image_id, id);
CREATE TABLE IF NOT EXISTS rounds (
    round INTEGER PRIMARY KEY,
    state TEXT NOT NULL,
    labelled INTEGER NOT NULL,
    checkpoint TEXT,
    metrics TEXT,
    class_weights TEXT,
    pool_uncertainty REAL,
    started_at TEXT NOT NULL,
    finished_at TEXT
);
CREATE TABLE IF NOT EXISTS queue (
    image_id INTEGER PRIMARY KEY REFERENCES images(id),
    round INTEGER NOT NULL,
    rank INTEGER NOT NULL,
    score REAL
);
CREATE TABLE IF NOT EXISTS scores (
    round INTEGER NOT NULL,
    image_id INTEGER NOT NULL REFERENCES images(id),
    score REAL NOT NULL,
    PRIMARY KEY (round, image_id)
);
CREATE TABLE IF NOT EXISTS stop_set (image_id INTEGER PRIMARY KEY REFERENCES images(id));
CREATE TABLE IF NOT EXISTS users (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL CHECK (role IN ('labeller', 'admin')),
    password TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
    token_hash TEXT PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    csrf TEXT NOT NULL,
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS label_effort (
    label_id INTEGER PRIMARY KEY REFERENCES labels(id),
    active_seconds REAL NOT NULL,
    strokes INTEGER NOT NULL,
    undos INTEGER NOT NULL,
    prelabel TEXT NOT NULL,
    source TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS login_failures (name TEXT NOT NULL, at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS login_failures_of_name ON login_failures (name, at);
CREATE TABLE IF NOT EXISTS leases (
    image_id INTEGER PRIMARY KEY REFERENCES images(id),
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    leased_at REAL NOT NULL,
    expires_at REAL NOT NULL
);
"""
# An image with its current (latest) label, if any.
IMAGES_WITH_LABELS = """
SELECT images.*, labels.path AS label_path, labels.round AS labelled_round, labels.labelled_at, labels.labelled_by,
       labels.defect_share
FROM images LEFT JOIN labels ON labels.id = (SELECT MAX(id) FROM labels WHERE labels.image_id = images.id)
"""


def now() -> str:
    """The current UTC time, ISO 8601 to the second."""
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass
class ImageRecord:
    """One image of a project, with its current label (if any)."""

    id: int
    name: str
    path: Path
    role: str
    truth_path: Path | None
    label_path: Path | None
    labelled_round: int | None
    labelled_by: str | None
    defect_share: float | None
    labelled_at: str | None = None

    @property
    def labelled(self) -> bool:
        """Whether the image has a label."""
        return self.label_path is not None


class ProjectStore:
    """Access to a project's database; every write method is one transaction. A context manager:
    ``with ProjectStore(root) as store:`` (or ``store, config = open_project(root)`` then
    ``with store:``) closes it at the end."""

    DB_NAME = "project.db"

    def __init__(self, root: str | Path, create: bool = False, db_name: str = DB_NAME) -> None:
        self.root = Path(root)
        self.db_path = self.root / db_name
        if not create and not self.db_path.is_file():
            raise CrackalError(f"no crackal project in {self.root} (no project.db); create one with 'crackal al init'")
        if create:
            if self.db_path.exists():
                raise CrackalError(f"{self.root} already holds a project; use another folder or 'crackal al status'")
            self.root.mkdir(parents=True, exist_ok=True)
        self.conn = sqlite3.connect(self.db_path, isolation_level=None, timeout=30)  # explicit transactions below
        self.conn.row_factory = sqlite3.Row
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=FULL")
        self.conn.execute("PRAGMA foreign_keys=ON")
        if self.conn.execute("PRAGMA user_version").fetchone()[0] < SCHEMA_VERSION:
            self._migrate()
        (self.root / "labels").mkdir(exist_ok=True)
        (self.root / "rounds").mkdir(exist_ok=True)

    def _migrate(self) -> None:
        """Bring a new or an older database to ``SCHEMA_VERSION`` in one transaction."""
        with self.transaction() as tx:
            old_columns = {row["name"] for row in tx.execute("PRAGMA table_info(images)")}
            for statement in SCHEMA.split(";"):
                if statement.strip():
                    tx.execute(statement)
            if "label_path" in old_columns:  # version 1: move the labels out of images, paths relative to the project
                self._migrate_version_1(tx)
            tx.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def _migrate_version_1(self, tx: sqlite3.Connection) -> None:
        rows = tx.execute("SELECT id, path, truth_path, label_path, labelled_round, labelled_at, labelled_by, defect_share "
                          "FROM images").fetchall()
        for row in rows:
            tx.execute("UPDATE images SET path = ?, truth_path = ? WHERE id = ?",
                       (self._stored(_found(row["path"], self.root)),
                        self._stored(_found(row["truth_path"], self.root)) if row["truth_path"] else None, row["id"]))
            if row["label_path"]:
                tx.execute("INSERT INTO labels (image_id, path, round, labelled_at, labelled_by, defect_share) "
                           "VALUES (?, ?, ?, ?, ?, ?)",
                           (row["id"], self._stored(_inside(row["label_path"], self.root, "labels")),
                            row["labelled_round"] or 0, row["labelled_at"] or now(), row["labelled_by"] or "person",
                            row["defect_share"]))
        for column in ("label_path", "labelled_round", "labelled_at", "labelled_by", "defect_share"):
            tx.execute(f"ALTER TABLE images DROP COLUMN {column}")
        for row in tx.execute("SELECT round, checkpoint FROM rounds WHERE checkpoint IS NOT NULL").fetchall():
            tx.execute("UPDATE rounds SET checkpoint = ? WHERE round = ?",
                       (self._stored(_inside(row["checkpoint"], self.root, "rounds")), row["round"]))

    # paths -------------------------------------------------------------------------------

    def _stored(self, path: str | Path) -> str:
        """How a path is kept: relative to the project when inside it, absolute otherwise."""
        absolute = Path(path).absolute()
        root = self.root.absolute()
        return str(absolute.relative_to(root)) if absolute.is_relative_to(root) else str(absolute)

    def resolve(self, stored: str | None) -> Path | None:
        """A stored path as a usable one (relative paths are inside the project)."""
        return None if stored is None else self.root / stored

    def close(self) -> None:
        """Close the database connection."""
        self.conn.close()

    def __enter__(self) -> ProjectStore:
        return self

    def __exit__(self, *exc_info) -> None:
        """``with ProjectStore(root) as store:`` closes the connection at the end of the block."""
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """All or nothing: commits at the end, rolls back on any error (or a kill)."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            if self.conn.in_transaction:  # SQLite has rolled back itself after a full disk or an I/O error
                self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    # settings --------------------------------------------------------------------------

    def settings(self) -> dict:
        """The stored settings, as saved (see ``ALConfig.from_dict`` for the config)."""
        return {row["key"]: json.loads(row["value"]) for row in self.conn.execute("SELECT key, value FROM settings")}

    def update_settings(self, values: dict) -> None:
        """Store or replace these settings."""
        with self.transaction() as tx:
            tx.executemany("INSERT OR REPLACE INTO settings VALUES (?, ?)", [(k, json.dumps(v)) for k, v in values.items()])

    def replace_settings(self, values: dict) -> None:
        """All settings at once (older keys that ``values`` lacks are dropped)."""
        with self.transaction() as tx:
            tx.execute("DELETE FROM settings")
            tx.executemany("INSERT INTO settings VALUES (?, ?)", [(k, json.dumps(v)) for k, v in values.items()])

    # images ------------------------------------------------------------------------------

    def add_images(self, rows: list[tuple[str, Path, str, Path | None]]) -> None:
        """Register ``(name, image path, role, ground-truth mask or None)`` rows."""
        with self.transaction() as tx:
            tx.executemany(
                "INSERT INTO images (name, path, role, truth_path) VALUES (?, ?, ?, ?)",
                [(n, self._stored(p), role, self._stored(t) if t else None) for n, p, role, t in rows],
            )

    def _record(self, row: sqlite3.Row) -> ImageRecord:
        return ImageRecord(
            row["id"], row["name"], self.root / row["path"], row["role"], self.resolve(row["truth_path"]),
            self.resolve(row["label_path"]), row["labelled_round"], row["labelled_by"], row["defect_share"], row["labelled_at"],
        )

    def images(self, where: str = "1", params: tuple = ()) -> list[ImageRecord]:
        """Images matching an SQL condition on the images and their current labels, by id."""
        query = f"SELECT * FROM ({IMAGES_WITH_LABELS}) WHERE {where} ORDER BY id"
        return [self._record(r) for r in self.conn.execute(query, params)]

    def labelled(self) -> list[ImageRecord]:
        """Pool images with a label."""
        return self.images("role = 'pool' AND label_path IS NOT NULL")

    def unlabelled(self) -> list[ImageRecord]:
        """Pool images without a label that are not waiting in the queue."""
        return self.images("role = 'pool' AND label_path IS NULL AND id NOT IN (SELECT image_id FROM queue)")

    def heldout(self) -> list[ImageRecord]:
        """The held-out images (ground truth fixed)."""
        return self.images("role = 'heldout'")

    def stop_set(self) -> list[ImageRecord]:
        """The stop set: pool images whose predictions are compared round to round (empty until chosen)."""
        return self.images("id IN (SELECT image_id FROM stop_set)")

    def set_stop_set(self, image_ids: list[int]) -> None:
        """Record the stop set, once: an existing one is kept."""
        with self.transaction() as tx:
            if tx.execute("SELECT COUNT(*) FROM stop_set").fetchone()[0] == 0:
                tx.executemany("INSERT INTO stop_set VALUES (?)", [(i,) for i in image_ids])

    def by_name(self, name: str) -> ImageRecord | None:
        """The image called ``name``, or None."""
        found = self.images("name = ?", (name,))
        return found[0] if found else None

    def label_history(self, image_id: int) -> list[dict]:
        """Every label of an image, oldest first (path, round, when, by whom, defect share, and the
        measured effort: active seconds, strokes, undos, pre-label outcome; None where not measured)."""
        rows = self.conn.execute(
            "SELECT labels.*, label_effort.active_seconds, label_effort.strokes, label_effort.undos, label_effort.prelabel "
            "FROM labels LEFT JOIN label_effort ON label_effort.label_id = labels.id WHERE image_id = ? ORDER BY labels.id",
            (image_id,)).fetchall()
        return [{**dict(row), "path": self.resolve(row["path"])} for row in rows]

    def label_versions(self, image_id: int) -> int:
        """How many labels an image has had."""
        return self.conn.execute("SELECT COUNT(*) FROM labels WHERE image_id = ?", (image_id,)).fetchone()[0]

    def record_labels(self, labels: list[tuple[int, Path, float]], by: str | Sequence[str], round_: int,
                      efforts: Sequence[Effort | None] | None = None) -> None:
        """Record ``(image id, label file, defect share)`` as each image's new label (earlier ones
        stay in the history) with the labelling effort measured for it (if any), and take the
        images off the queue, in one transaction. ``by`` names the labeller of all of them, or of each."""
        stamp = now()
        labellers = [by] * len(labels) if isinstance(by, str) else list(by)
        measured = list(efforts) if efforts is not None else [None] * len(labels)
        with self.transaction() as tx:
            for (image_id, path, share), labeller, effort in zip(labels, labellers, measured, strict=True):
                label_id = tx.execute(
                    "INSERT INTO labels (image_id, path, round, labelled_at, labelled_by, defect_share) VALUES (?, ?, ?, ?, ?, ?)",
                    (image_id, self._stored(path), round_, stamp, labeller, share)).lastrowid
                if effort is not None:
                    tx.execute("INSERT INTO label_effort VALUES (?, ?, ?, ?, ?, ?)",
                               (label_id, effort.active_seconds, effort.strokes, effort.undos, effort.prelabel, effort.source))
            tx.executemany("DELETE FROM queue WHERE image_id = ?", [(image_id,) for image_id, _, _ in labels])

    def label_efforts(self) -> list[dict]:
        """Every measured label, oldest first: image id and name, round, labeller, when, and its
        effort (active seconds, strokes, undos, pre-label outcome, source)."""
        rows = self.conn.execute(
            "SELECT labels.id AS label_id, labels.image_id, images.name, labels.round, labels.labelled_by, labels.labelled_at, "
            "label_effort.active_seconds, label_effort.strokes, label_effort.undos, label_effort.prelabel, label_effort.source "
            "FROM label_effort JOIN labels ON labels.id = label_effort.label_id JOIN images ON images.id = labels.image_id "
            "ORDER BY labels.id").fetchall()
        return [dict(row) for row in rows]


    # queue -------------------------------------------------------------------------------

    def queue(self) -> list[tuple[ImageRecord, int, float | None]]:
        """The images waiting for labels: (record, round that queued it, acquisition score), in order."""
        rows = self.conn.execute("SELECT image_id, round, score FROM queue ORDER BY rank").fetchall()
        records = {r.id: r for r in self.images("id IN (SELECT image_id FROM queue)")}
        # an image labelled between the two reads has left the queue
        return [(records[row["image_id"]], row["round"], row["score"]) for row in rows if row["image_id"] in records]

    def queue_place(self, image_id: int) -> tuple[int, int, float | None] | None:
        """One image's place in the queue: (position, round that queued it, acquisition score), or
        None when it is not queued; one indexed read, where ``queue()`` reads the whole queue."""
        row = self.conn.execute("SELECT round, rank, score FROM queue WHERE image_id = ?", (image_id,)).fetchone()
        if row is None:
            return None
        position = self.conn.execute("SELECT COUNT(*) FROM queue WHERE rank < ?", (row["rank"],)).fetchone()[0]
        return position, row["round"], row["score"]

    def queue_rounds(self, image_ids: Sequence[int]) -> dict[int, int]:
        """Queued image id -> the round that queued it, of these images (the others are not queued)."""
        marks = ",".join("?" * len(image_ids))
        rows = self.conn.execute(f"SELECT image_id, round FROM queue WHERE image_id IN ({marks})", tuple(image_ids))
        return {row["image_id"]: row["round"] for row in rows}

    def queue_names(self) -> list[tuple[int, str]]:
        """(id, name) of the queued images, in order: the queue without reading each image's label."""
        rows = self.conn.execute("SELECT images.id, images.name FROM queue JOIN images ON images.id = queue.image_id "
                                 "ORDER BY queue.rank").fetchall()
        return [(row["id"], row["name"]) for row in rows]

    def queue_count(self) -> int:
        """How many images wait for labels."""
        return self.conn.execute("SELECT COUNT(*) FROM queue").fetchone()[0]

    def enqueue(self, round_: int, image_ids: list[int], scores: list[float | None]) -> None:
        """Queue images for labelling, in this order."""
        with self.transaction() as tx:
            tx.executemany(
                "INSERT INTO queue (image_id, round, rank, score) VALUES (?, ?, ?, ?)",
                [(i, round_, rank, s) for rank, (i, s) in enumerate(zip(image_ids, scores))],
            )

    # rounds ------------------------------------------------------------------------------

    def rounds(self) -> list[dict]:
        """Every round: state, labelled count, checkpoint (a path), metrics, class weights, pool uncertainty."""
        out = []
        for row in self.conn.execute("SELECT * FROM rounds ORDER BY round"):
            item = dict(row)
            for key in ("metrics", "class_weights"):
                item[key] = json.loads(item[key]) if item[key] else None
            item["checkpoint"] = self.resolve(item["checkpoint"])
            out.append(item)
        return out

    def current_round(self) -> dict | None:
        """The last round, or None before the first."""
        rounds = self.rounds()
        return rounds[-1] if rounds else None

    def start_round(self, round_: int, labelled: int) -> None:
        """Record a round as training (nothing if it exists: an interrupted round goes on)."""
        with self.transaction() as tx:
            tx.execute(
                "INSERT OR IGNORE INTO rounds (round, state, labelled, started_at) VALUES (?, 'training', ?, ?)",
                (round_, labelled, now()),
            )

    def update_round(self, round_: int, **values) -> None:
        """Set columns of a round (metrics and class weights as JSON, the checkpoint as a stored path)."""
        for key in ("metrics", "class_weights"):
            if key in values and values[key] is not None:
                values[key] = json.dumps(values[key])
        if values.get("checkpoint") is not None:
            values["checkpoint"] = self._stored(values["checkpoint"])
        columns = ", ".join(f"{k} = ?" for k in values)
        with self.transaction() as tx:
            tx.execute(f"UPDATE rounds SET {columns} WHERE round = ?", (*values.values(), round_))

    def round_scores(self, round_: int) -> dict[int, float]:
        """The acquisition score a round gave each pool image it scored, by image id."""
        rows = self.conn.execute("SELECT image_id, score FROM scores WHERE round = ?", (round_,))
        return {row["image_id"]: row["score"] for row in rows}

    def finish_round(self, round_: int, scores: dict[int, float], selected: list[int], selected_scores: list[float],
                     pool_uncertainty: float | None) -> None:
        """Store the pool scores, queue the selection and close the round, all in one transaction."""
        with self.transaction() as tx:
            tx.executemany("INSERT OR REPLACE INTO scores VALUES (?, ?, ?)", [(round_, i, s) for i, s in scores.items()])
            tx.executemany(
                "INSERT INTO queue (image_id, round, rank, score) VALUES (?, ?, ?, ?)",
                [(i, round_ + 1, rank, s) for rank, (i, s) in enumerate(zip(selected, selected_scores))],
            )
            tx.execute(
                "UPDATE rounds SET state = 'done', pool_uncertainty = ?, finished_at = ? WHERE round = ?",
                (pool_uncertainty, now(), round_),
            )


def _found(stored: str, root: Path) -> Path:
    """A version-1 path outside the project: relative to the folder where 'al init' ran, which
    is unknown; the current folder is the best guess, else the project's parent."""
    path = Path(stored)
    if path.is_absolute() or path.exists():
        return path.absolute()
    return root.absolute().parent / path if (root.absolute().parent / path).exists() else path.absolute()


def _inside(stored: str, root: Path, folder: str) -> Path:
    """A version-1 path inside the project (``.../labels/x.png``, ``.../rounds/001/...``): its part
    from ``folder`` on, under the project's root."""
    parts = Path(stored).parts
    return root.joinpath(*parts[len(parts) - 1 - parts[::-1].index(folder):]) if folder in parts else Path(stored)


def open_project(root: str | Path) -> tuple[ProjectStore, ALConfig]:
    """The project's store and its settings (older projects' settings migrated)."""
    store = ProjectStore(root)
    return store, ALConfig.from_dict(store.settings())
