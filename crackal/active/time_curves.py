"""Learning curves against labelling time instead of labelled images.

Each round's labelling seconds are the sum of the measured (or, in a simulation, simulated)
active seconds of the labels it trained on (``seconds_by_round``). Runs reach different
hours at each round, so strategies are compared on a common grid of hours *after the first
round* (the initial set, whose cost the runs of a seed share and seeds do not): each run's F1
is interpolated linearly at ``points`` evenly spaced hours from 0 to the least that any run
labelled after its first round, and the area under F1-vs-hours is taken over that same span
(divided by its length: the mean F1 over those hours). Differences are paired
by seed (each run minus its baseline with the same start, ``paired_baseline``; a cost-aware
run also minus its base strategy), with 95 % intervals over seeds (Student's t).
"""

from __future__ import annotations

import numpy as np

from crackal.active.pairing import confidence_bounds, interval95, paired_baseline

POINTS = 5  # hours on the common grid


def seconds_by_round(rounds: list[dict], efforts: list[dict]) -> list[float | None]:
    """Per round (``{"round", "labelled"}``), the labelling seconds of the labels it trained on
    (those recorded in its round or before); None where some of them carry no time."""
    out: list[float | None] = []
    for round_ in rounds:
        timed = [e["active_seconds"] for e in efforts if e["round"] <= round_["round"]]
        out.append(round(float(sum(timed)), 2) if len(timed) >= round_["labelled"] else None)
    return out


def _timed(runs: list[dict]) -> bool:
    return bool(runs) and all(r.get("seconds") and None not in r["seconds"] for r in runs)


def _after_first(run: dict) -> np.ndarray:
    """A run's labelling seconds after its first round, per round."""
    length = min(len(run["seconds"]), len(run["f1"]))
    seconds = np.asarray(run["seconds"][:length], dtype=np.float64)
    return seconds - seconds[0]


def hours_grid(histories: dict[str, list[dict]], points: int = POINTS) -> np.ndarray | None:
    """``points`` hours after the first round, from 0 to the least any timed run labelled after
    its first round (None when no run is timed or one labelled nothing more)."""
    runs = [r for runs in histories.values() if _timed(runs) for r in runs]
    if not runs:
        return None
    high = min(_after_first(r)[-1] for r in runs) / 3600
    return np.linspace(0, high, points) if high > 0 else None


def f1_at_hours(run: dict, hours: np.ndarray) -> np.ndarray:
    """A run's F1 interpolated linearly at ``hours`` of labelling after its first round."""
    length = min(len(run["seconds"]), len(run["f1"]))
    return np.interp(hours * 3600, _after_first(run), np.asarray(run["f1"][:length], dtype=np.float64))


def _area(values: np.ndarray, hours: np.ndarray) -> np.ndarray:
    """Mean F1 over the grid's span (trapezoids / span), per row."""
    return np.trapezoid(values, hours, axis=-1) / (hours[-1] - hours[0])


def _stats(values: np.ndarray) -> dict:

    mean, half = interval95(values)
    return {"mean": np.round(mean, 4).tolist(), "ci95": confidence_bounds(np.atleast_1d(mean), np.atleast_1d(half))}


def base_strategy(strategy: str) -> str | None:
    """A cost-aware run's base strategy (``bald+cost`` -> ``bald``), else None.

    >>> base_strategy("bald+warm+cost"), base_strategy("bald")
    ('bald+warm', None)
    """
    parts = strategy.split("+")
    return "+".join(p for p in parts if p != "cost") if "cost" in parts[1:] else None


def time_summary(histories: dict[str, list[dict]], points: int = POINTS) -> dict | None:
    """F1 against labelling hours: the common grid, per strategy the mean F1 at each grid point
    and its area over the grid (mean F1 per hour of the span) with 95 % intervals, the hours and
    seconds per image of its last round, and the paired differences (by seed) to its baselines;
    None when the runs carry no labelling times."""

    hours = hours_grid(histories, points)
    if hours is None:
        return None
    strategies, paired = {}, {}
    curves = {s: np.array([f1_at_hours(r, hours) for r in runs]) for s, runs in histories.items() if _timed(runs)}
    for strategy, values in curves.items():
        runs = histories[strategy]
        last = [min(len(r["seconds"]), len(r["f1"])) - 1 for r in runs]
        strategies[strategy] = {
            "seeds": len(runs), "f1_at_hours": _stats(values), "area": _stats(_area(values, hours)[:, None]),
            "final_hours": round(float(np.mean([_after_first(r)[-1] for r in runs])) / 3600, 4),  # after the first round
            "seconds_per_image": round(float(np.mean([r["seconds"][i] / r["labelled"][i] for r, i in zip(runs, last)])), 2),
        }
        for baseline in dict.fromkeys([paired_baseline(strategy, histories), base_strategy(strategy)]):
            if baseline is None or baseline == strategy or baseline not in curves:
                continue
            seeds = min(len(values), len(curves[baseline]))
            diff = values[:seeds] - curves[baseline][:seeds]
            paired[f"{strategy} - {baseline}"] = {"seeds": seeds, "f1_at_hours": _stats(diff),
                                                 "area": _stats(_area(diff, hours)[:, None])}
    return {"hours": np.round(hours, 4).tolist(), "strategies": strategies, "paired": paired}


def _cell(stats: dict, index: int = 0, sign: str = "") -> str:
    interval = stats["ci95"][index]
    return f"{stats['mean'][index]:{sign}.3f}" + (f" [{interval[0]:{sign}.3f}, {interval[1]:{sign}.3f}]" if interval else "")


def duration(hours: float, minutes: bool) -> str:
    """``hours`` as text, in minutes when ``minutes``.

    >>> duration(0.25, True), duration(2.5, False)
    ('15 min', '2.50 h')
    """
    return f"{hours * 60:.0f} min" if minutes else f"{hours:.2f} h"


def time_tables(summary: dict) -> tuple[tuple[list[str], list[list[str]]], tuple[list[str], list[list[str]]]]:
    """Two tables of a ``time_summary``: per strategy the F1 at each grid point and the area, and
    per paired difference the same (mean [95 % interval] over seeds). Times in minutes below 2 h."""
    minutes = summary["hours"][-1] < 2
    hours = [duration(h, minutes) for h in summary["hours"]]
    header = ["strategy", "seeds", *(f"F1 at +{h}" for h in hours), "area (mean F1 over the span)",
              "labelling time after the first round, at the last", "seconds per labelled image"]
    rows = [[s, str(e["seeds"]), *(_cell(e["f1_at_hours"], i) for i in range(len(hours))), _cell(e["area"]),
             duration(e["final_hours"], minutes), f"{e['seconds_per_image']:.1f}"] for s, e in summary["strategies"].items()]
    paired_header = ["paired by seed", "seeds", *(f"at +{h}" for h in hours), "area difference"]
    paired = [[name, str(p["seeds"]), *(_cell(p["f1_at_hours"], i, "+") for i in range(len(hours))), _cell(p["area"], 0, "+")]
              for name, p in summary["paired"].items()]
    return (header, rows), (paired_header, paired)


def time_lines(summary: dict | None) -> list[str]:
    """The report's section on F1 against labelling time (nothing when the runs are not timed)."""
    if not summary:
        return []

    def table(header: list[str], rows: list[list[str]]) -> list[str]:
        return ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)] + ["| " + " | ".join(r) + " |" for r in rows]

    (header, rows), (paired_header, paired) = time_tables(summary)
    lines = ["", "## F1 against labelling time", "",
             "Each run's F1 interpolated at equal labelling time after its first round (its labels' measured or "
             "simulated seconds); mean [95 % interval] over seeds.", ""] + table(header, rows)
    return lines + ([""] + table(paired_header, paired) if paired else [])


def plot_time_curves(histories: dict[str, list[dict]], path, title: str = "") -> None:
    """F1 against cumulative labelling time (minutes below 2 h), each seed's curve thin and the
    mean on the common grid bold."""
    from crackal.training.plots import pyplot

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    hours = hours_grid(histories)
    timed = [r for runs in histories.values() if _timed(runs) for r in runs]
    scale = 60.0 if timed and max(_after_first(r)[-1] for r in timed) < 2 * 3600 else 1.0
    for (strategy, runs), color in zip(histories.items(), plt.cm.tab10.colors):
        if not _timed(runs):
            continue
        for run in runs:
            length = min(len(run["seconds"]), len(run["f1"]))
            ax.plot(_after_first(run) / 3600 * scale, run["f1"][:length], color=color, lw=0.6, alpha=0.4)
        if hours is not None:
            ax.plot(hours * scale, np.mean([f1_at_hours(r, hours) for r in runs], 0), color=color, lw=2, marker="o", ms=3,
                    label=f"{strategy} ({len(runs)} seeds)")
    ax.set_xlabel(f"labelling {'minutes' if scale == 60 else 'hours'} after the initial set (simulated or measured)")
    ax.set_ylabel("held-out F1")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
