"""Labelling effort measured by the labelling app (or read from Label Studio's ``lead_time``):
what one label cost a person, and the summaries the dashboard, ``al status`` and ``al report`` use.

Active time is the time the editor page was visible with input (a pointer move, click, key or
wheel) in the last ``IDLE_SECONDS`` seconds: a labeller who leaves the page open over lunch adds
at most ``IDLE_SECONDS`` per pause. The measured median replaces the config's ``seconds_per_image``
estimate once ``MIN_MEASURED`` labels are measured.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import median

from crackal.errors import CrackalError

IDLE_SECONDS = 30.0  # input gaps longer than this are not counted (the page's idle window)
MIN_MEASURED = 10  # measured labels before their median replaces the config's estimate
MAX_SECONDS = 4 * 3600.0  # one image's active time above this is refused as a broken clock
MAX_COUNT = 1_000_000  # strokes or undos of one image
# no pre-label, submitted as is, changed, cleared and redrawn; unknown (Label Studio's lead_time says only the time)
PRELABEL_OUTCOMES = ("none", "accepted", "edited", "redrawn", "unknown")


@dataclass(frozen=True)
class Effort:
    """What one label cost: active seconds, strokes drawn, undos, the pre-label's outcome, and
    where the figure comes from (``app``, ``label-studio``)."""

    active_seconds: float
    strokes: int = 0
    undos: int = 0
    prelabel: str = "none"
    source: str = "app"

    def as_dict(self) -> dict:
        """The figures as JSON values."""
        return {"active_seconds": self.active_seconds, "strokes": self.strokes, "undos": self.undos,
                "prelabel": self.prelabel, "source": self.source}


def parse_effort(data: object, source: str = "app") -> Effort:
    """An ``Effort`` from a JSON object ``{"active_seconds", "strokes", "undos", "prelabel"}``;
    ``CrackalError`` naming the bad field (negative, absurd or not a number, unknown outcome).

    >>> parse_effort({"active_seconds": 42.5, "strokes": 7, "undos": 1, "prelabel": "edited"}).strokes
    7
    """
    if not isinstance(data, dict):
        raise CrackalError('the labelling effort must be a JSON object {"active_seconds": .., "strokes": .., "undos": .., '
                           '"prelabel": ..}')
    seconds = data.get("active_seconds")
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not math.isfinite(seconds):
        raise CrackalError(f"active_seconds must be a number of seconds, got {str(seconds)[:40]!r}")
    if not 0 <= seconds <= MAX_SECONDS:
        raise CrackalError(f"active_seconds {seconds:g} is outside 0..{MAX_SECONDS:.0f} s (one image's labelling time)")
    counts = {}
    for key in ("strokes", "undos"):
        value = data.get(key, 0)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_COUNT:
            raise CrackalError(f"{key} must be a whole number in 0..{MAX_COUNT:,}, got {str(value)[:40]!r}")
        counts[key] = value
    prelabel = data.get("prelabel", "none")
    if prelabel not in PRELABEL_OUTCOMES:
        raise CrackalError(f"prelabel must be one of {', '.join(PRELABEL_OUTCOMES)}, got {str(prelabel)[:40]!r}")
    return Effort(round(float(seconds), 2), counts["strokes"], counts["undos"], prelabel, source)


def _median(values: list[float]) -> float | None:
    return round(median(values), 1) if values else None


def effort_summary(rows: list[dict]) -> dict:
    """The measured labelling time of a project's timed labels (``ProjectStore.label_efforts``):
    how many, their median active seconds, per labeller and per round (the trend), and how
    pre-labels fared."""
    by_labeller: dict[str, list[float]] = {}
    by_round: dict[int, list[float]] = {}
    outcomes = dict.fromkeys(PRELABEL_OUTCOMES, 0)
    for row in rows:
        by_labeller.setdefault(row["labelled_by"], []).append(row["active_seconds"])
        by_round.setdefault(row["round"], []).append(row["active_seconds"])
        outcomes[row["prelabel"]] = outcomes.get(row["prelabel"], 0) + 1
    return {
        "measured": len(rows),
        "median_seconds": _median([row["active_seconds"] for row in rows]),
        "total_hours": round(sum(row["active_seconds"] for row in rows) / 3600, 3),
        "labellers": [{"name": name, "measured": len(times), "median_seconds": _median(times)}
                      for name, times in sorted(by_labeller.items())],
        "rounds": [{"round": round_, "measured": len(times), "median_seconds": _median(times)}
                   for round_, times in sorted(by_round.items())],
        "prelabel": outcomes,
        "idle_seconds": IDLE_SECONDS,
    }


def seconds_per_image(rows: list[dict], estimate: float) -> tuple[float, str]:
    """The labelling seconds per image the cost figures use, and where it comes from: the median
    of the timed labels (``ProjectStore.label_efforts``) once ``MIN_MEASURED`` are timed, else
    ``estimate`` (the project's ``seconds_per_image``)."""
    times = [row["active_seconds"] for row in rows]
    if len(times) >= MIN_MEASURED:
        if all(row["source"] == "simulated" for row in rows):  # a simulation: the ground truth's simulated times
            return float(median(times)), f"simulated: median of {len(times)} labels' simulated times (crackal.acquisition.cost)"
        return float(median(times)), f"measured: median of {len(times)} labels timed in the labelling app"
    source = f"estimate: seconds_per_image of the project's settings ({estimate:g} s)"
    if times:
        source += f"; {len(times)} of the {MIN_MEASURED} measured labels needed to use the measured time"
    return float(estimate), source
