"""Report of change-detection AL runs: AUC against labelled tiles and the share of changed
tiles in the labelled set, per strategy (mean and standard deviation over seeds)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from crackal.metrics.change import PROTOCOL
from crackal.metrics.curves import curve_area, labels_to_reach


def _curves(states: list[dict], key: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    length = min(len(s["rounds"]) for s in states)
    x = np.array([r["labelled"] for r in states[0]["rounds"][:length]])
    values = np.array([[r[key] for r in s["rounds"][:length]] for s in states], dtype=np.float64)
    return x, values.mean(0), values.std(0)


def summarise_change(runs: dict[str, list[dict]], reference_auc: float | None) -> dict:
    """Per strategy: curves, curve area, tiles (and share of the pool) to reach the reference AUC."""
    strategies: dict[str, dict] = {}
    summary = {"protocol": PROTOCOL, "reference_auc": reference_auc, "strategies": strategies}
    for name, states in runs.items():
        x, auc, auc_sd = _curves(states, "auc")
        _, share, _ = _curves(states, "changed_share")
        pool = states[0]["pool_size"]
        needed = labels_to_reach(x, auc, reference_auc) if reference_auc is not None else None
        strategies[name] = {
            "seeds": len(states), "pool_size": pool, "pool_changed_share": round(states[0]["pool_changed_share"], 4),
            "labelled": x.tolist(), "auc_mean": auc.round(4).tolist(), "auc_std": auc_sd.round(4).tolist(),
            "changed_share_mean": share.round(4).tolist(), "curve_area": round(curve_area(x, auc), 4),
            "tiles_to_reference": needed, "share_of_pool_to_reference": round(needed / pool, 4) if needed else None,
        }
    return summary


def plot_change(summary: dict, path: Path) -> None:
    """Plot pixel ROC-AUC (mean +- std over seeds) and the share of changed tiles labelled,
    against labelled tiles, for each strategy, to ``path``."""
    from crackal.training.plots import pyplot

    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for (name, e), color in zip(summary["strategies"].items(), plt.cm.tab10.colors):
        style = "--" if name == "random" else "-"
        x, auc, sd = np.array(e["labelled"]), np.array(e["auc_mean"]), np.array(e["auc_std"])
        axes[0].plot(x, auc, style, color=color, marker="o", ms=3, label=f"{name} ({e['seeds']} seeds)")
        axes[0].fill_between(x, auc - sd, auc + sd, color=color, alpha=0.12)
        axes[1].plot(x, e["changed_share_mean"], style, color=color, marker="o", ms=3, label=name)
    if summary.get("reference_auc") is not None:
        axes[0].axhline(summary["reference_auc"], color="k", lw=0.8, label="all pool tiles labelled")
    any_entry = next(iter(summary["strategies"].values()))
    axes[1].axhline(any_entry["pool_changed_share"], color="k", lw=0.8, ls=":", label="share in the pool")
    axes[0].set_title("pixel ROC-AUC, balanced test tiles", fontsize=9)
    axes[1].set_title("share of changed tiles in the labelled set", fontsize=9)
    for ax in axes:
        ax.set_xlabel("labelled tiles")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_change_report(runs: dict[str, list[dict]], out: str | Path, reference_auc: float | None = None,
                        title: str = "Change-detection active learning") -> Path:
    """``report.json``, ``learning_curves.png`` and ``report.md`` in ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    summary = summarise_change(runs, reference_auc)
    (out / "report.json").write_text(json.dumps(summary, indent=1))
    plot_change(summary, out / "learning_curves.png")
    any_entry = next(iter(summary["strategies"].values()))
    lines = [f"# {title}", "", f"Pool of {any_entry['pool_size']} tiles, {any_entry['pool_changed_share']:.1%} of them changed. "
             f"Scores: {PROTOCOL}. Mean over seeds.", "", "![learning curves](learning_curves.png)", "",
             "| strategy | seeds | AUC per round | changed share of the labelled set per round | curve area | tiles to reference AUC |",
             "| --- | --- | --- | --- | --- | --- |"]
    for name, e in summary["strategies"].items():
        reached = f"{e['tiles_to_reference']} ({e['share_of_pool_to_reference']:.0%})" if e["tiles_to_reference"] else "not reached"
        lines.append(f"| {name} | {e['seeds']} | {' / '.join(f'{v:.3f}' for v in e['auc_mean'])} | "
                     f"{' / '.join(f'{v:.2f}' for v in e['changed_share_mean'])} | {e['curve_area']:.3f} | {reached} |")
    lines += ["", f"Labelled tiles per round: {' / '.join(str(v) for v in any_entry['labelled'])}."]
    if reference_auc is not None:
        lines += [f"Reference: a model trained on every pool tile with the same recipe, AUC {reference_auc:.4f} (mean over seeds)."]
    report = out / "report.md"
    report.write_text("\n".join(lines) + "\n")
    return report
