"""The project store: one SQLite database (``project.db``) plus files under the project folder.

```
PROJECT/project.db      images, labels (when, by whom), rounds, scores, the labelling queue
PROJECT/labels/         masks of labelled images (0/255 or class indices), written atomically
PROJECT/rounds/NNN/     each round's training run (config, checkpoints, metrics)
```

Every change is one SQLite transaction and every file is written to a temporary name and
renamed, so a project killed at any moment reopens consistent: no label and no finished
round is lost.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from crackal.errors import CrackalError

SCHEMA = """
CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS images (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    path TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('pool', 'heldout')),
    truth_path TEXT,
    label_path TEXT,
    labelled_round INTEGER,
    labelled_at TEXT,
    labelled_by TEXT,
    defect_share REAL
);
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
"""


def now() -> str:
    """The current UTC time, ISO 8601 to the second."""
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass
class ImageRecord:
    """One image of a project: its role (``pool`` or ``heldout``), ground truth and label, if any."""

    id: int
    name: str
    path: Path
    role: str
    truth_path: Path | None
    label_path: Path | None
    labelled_round: int | None
    labelled_by: str | None
    defect_share: float | None

    @property
    def labelled(self) -> bool:
        """Whether the image has a label."""
        return self.label_path is not None


class ProjectStore:
    """Access to a project's database; every write method is one transaction."""

    def __init__(self, root: str | Path, create: bool = False) -> None:
        self.root = Path(root)
        self.db_path = self.root / "project.db"
        if not create and not self.db_path.is_file():
            raise CrackalError(f"no crackal project in {self.root} (no project.db); create one with 'crackal al init'")
        if create:
            if self.db_path.exists():
                raise CrackalError(f"{self.root} already holds a project; use another folder or 'crackal al status'")
            self.root.mkdir(parents=True, exist_ok=True)
        self.conn = sqlite3.connect(self.db_path, isolation_level=None)  # explicit transactions below
        self.conn.row_factory = sqlite3.Row
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=FULL")
        self.conn.execute("PRAGMA foreign_keys=ON")
        self.conn.executescript(SCHEMA)
        (self.root / "labels").mkdir(exist_ok=True)
        (self.root / "rounds").mkdir(exist_ok=True)

    def close(self) -> None:
        """Close the database connection."""
        self.conn.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """All or nothing: commits at the end, rolls back on any error (or a kill)."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    # settings --------------------------------------------------------------------------

    def settings(self) -> dict:
        """All settings, JSON values decoded."""
        return {row["key"]: json.loads(row["value"]) for row in self.conn.execute("SELECT key, value FROM settings")}

    def update_settings(self, values: dict) -> None:
        """Add or overwrite the settings in ``values`` (the others are kept)."""
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
                [(n, str(p), role, str(t) if t else None) for n, p, role, t in rows],
            )

    def _record(self, row: sqlite3.Row) -> ImageRecord:
        return ImageRecord(
            row["id"], row["name"], Path(row["path"]), row["role"],
            Path(row["truth_path"]) if row["truth_path"] else None,
            Path(row["label_path"]) if row["label_path"] else None,
            row["labelled_round"], row["labelled_by"], row["defect_share"],
        )

    def images(self, where: str = "1", params: tuple = ()) -> list[ImageRecord]:
        """The images matching the SQL condition ``where`` (``params`` fill its ``?``), ordered by id."""
        return [self._record(r) for r in self.conn.execute(f"SELECT * FROM images WHERE {where} ORDER BY id", params)]

    def labelled(self) -> list[ImageRecord]:
        """Pool images that have a label."""
        return self.images("role = 'pool' AND label_path IS NOT NULL")

    def unlabelled(self) -> list[ImageRecord]:
        """Pool images without a label that are not waiting in the queue."""
        return self.images("role = 'pool' AND label_path IS NULL AND id NOT IN (SELECT image_id FROM queue)")

    def heldout(self) -> list[ImageRecord]:
        """The held-out images."""
        return self.images("role = 'heldout'")

    def by_name(self, name: str) -> ImageRecord | None:
        """The image called ``name``, or None."""
        found = self.images("name = ?", (name,))
        return found[0] if found else None

    def record_labels(self, labels: list[tuple[int, Path, float]], by: str, round_: int) -> None:
        """Mark ``(image id, label path, defect share)`` as labelled and take them off the queue."""
        stamp = now()
        with self.transaction() as tx:
            tx.executemany(
                "UPDATE images SET label_path = ?, defect_share = ?, labelled_round = ?, labelled_at = ?, labelled_by = ? WHERE id = ?",
                [(str(path), share, round_, stamp, by, image_id) for image_id, path, share in labels],
            )
            tx.executemany("DELETE FROM queue WHERE image_id = ?", [(image_id,) for image_id, _, _ in labels])

    # queue -------------------------------------------------------------------------------

    def queue(self) -> list[tuple[ImageRecord, int, float | None]]:
        """The queue in rank order: ``(record, round, score)`` (score None where none was given)."""
        rows = self.conn.execute("SELECT image_id, round, score FROM queue ORDER BY rank").fetchall()
        records = {r.id: r for r in self.images("id IN (SELECT image_id FROM queue)")}
        return [(records[row["image_id"]], row["round"], row["score"]) for row in rows]

    def enqueue(self, round_: int, image_ids: list[int], scores: list[float | None]) -> None:
        """Queue ``image_ids`` for labelling in round ``round_``, ranked in that order, with their scores."""
        with self.transaction() as tx:
            tx.executemany(
                "INSERT INTO queue (image_id, round, rank, score) VALUES (?, ?, ?, ?)",
                [(i, round_, rank, s) for rank, (i, s) in enumerate(zip(image_ids, scores))],
            )

    # rounds ------------------------------------------------------------------------------

    def rounds(self) -> list[dict]:
        """Every round's row in order, ``metrics`` and ``class_weights`` decoded from JSON."""
        out = []
        for row in self.conn.execute("SELECT * FROM rounds ORDER BY round"):
            item = dict(row)
            for key in ("metrics", "class_weights"):
                item[key] = json.loads(item[key]) if item[key] else None
            out.append(item)
        return out

    def current_round(self) -> dict | None:
        """The last round's row, or None before the first round."""
        rounds = self.rounds()
        return rounds[-1] if rounds else None

    def start_round(self, round_: int, labelled: int) -> None:
        """Record that round ``round_`` starts training on ``labelled`` images (kept if it exists)."""
        with self.transaction() as tx:
            tx.execute(
                "INSERT OR IGNORE INTO rounds (round, state, labelled, started_at) VALUES (?, 'training', ?, ?)",
                (round_, labelled, now()),
            )

    def update_round(self, round_: int, **values) -> None:
        """Set columns of a round's row (``metrics`` and ``class_weights`` are stored as JSON)."""
        for key in ("metrics", "class_weights"):
            if key in values and values[key] is not None:
                values[key] = json.dumps(values[key])
        columns = ", ".join(f"{k} = ?" for k in values)
        with self.transaction() as tx:
            tx.execute(f"UPDATE rounds SET {columns} WHERE round = ?", (*values.values(), round_))

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
