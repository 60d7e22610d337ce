"""Reports of active-learning projects and simulations: learning curves against the random
baseline (mean and spread over seeds), the class balance of what each round selected, the
labels needed to reach a target F1, and the labelling cost and time saved."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from crackal.active.config import ALConfig
from crackal.active.effort import seconds_per_image
from crackal.active.forecast import INTERVAL, forecast_labels, forecast_text
from crackal.active.pairing import confidence_bounds, interval95, paired_baseline, paired_cells
from crackal.active.scores import LABELS, round_scores
from crackal.active.stop_set import first_stable
from crackal.active.store import ProjectStore
from crackal.active.time_curves import seconds_by_round, time_lines, time_summary
from crackal.data.dataset import IGNORE_INDEX
from crackal.data.io import read_raw_mask, to_class_mask
from crackal.metrics.curves import curve_area, labels_to_reach
from crackal.training.plots import pyplot


def _classes_present(label_path: Path, class_names: list[str]) -> np.ndarray:
    """Which classes (index >= 1) a saved label mask or VOC box file holds, as a boolean vector."""
    num_classes = len(class_names)
    if label_path.suffix.lower() == ".xml":
        from crackal.data.boxes import read_voc

        return np.isin(np.arange(1, num_classes), read_voc(label_path, class_names).labels)
    mask = to_class_mask(read_raw_mask(label_path), num_classes, label_path)
    return np.bincount(mask[mask != IGNORE_INDEX].ravel(), minlength=num_classes)[1:num_classes] > 0


def project_history(root: str | Path) -> dict:
    """One project's curve: per round the labelled count and held-out scores, and per
    labelling batch the share of defect pixels and of images with a defect (per defect class
    too when there are several)."""
    with ProjectStore(root) as store:
        rounds = [r for r in store.rounds() if r["metrics"]]
        config = ALConfig.from_dict(store.settings())
        names = config.class_names
        batches: dict[int, list[float]] = {}
        present: dict[int, list[np.ndarray]] = {}
        for record in store.labelled():
            assert record.labelled_round is not None and record.label_path is not None  # a labelled record has both
            batches.setdefault(record.labelled_round, []).append(record.defect_share or 0.0)
            if len(names) > 2:
                present.setdefault(record.labelled_round, []).append(_classes_present(record.label_path, names))
        pool_size = len(store.images("role = 'pool'"))
        timed = store.label_efforts()
        seconds_labelled = seconds_by_round(rounds, timed)
        seconds, seconds_source = seconds_per_image(timed, config.seconds_per_image)
    per_class = {
        name: [float(np.mean([p[c] for p in present[b]])) for b in sorted(present)] for c, name in enumerate(names[1:])
    } if present else {}
    scores = [round_scores(r["metrics"]) for r in rounds]
    kappas = [r["metrics"].get("stop_kappa") for r in rounds]
    stable = first_stable(kappas, config.stop_kappa, config.stop_rounds)
    return {
        "task": config.task,
        "labelled": [r["labelled"] for r in rounds],
        "f1": [s["score"] for s in scores],  # the task's headline score (mAP@0.5 for detection)
        "seconds": seconds_labelled,  # labelling seconds of the labels each round trained on (None: not all timed)
        "precision": [s["precision"] for s in scores],
        "recall": [s["recall"] for s in scores],
        "f1_tol2": [s["score_2"] for s in scores],
        "loss": [s["loss"] for s in scores],
        "pool_uncertainty": [r["pool_uncertainty"] for r in rounds],
        "stop_kappa": kappas,
        "stop_advised_at": None if stable is None else rounds[stable]["labelled"],  # labels when the stop advice came
        "batch_defect_pixels": [float(np.mean(batches[b])) for b in sorted(batches)],
        "batch_defect_images": [float(np.mean(np.array(batches[b]) > 0)) for b in sorted(batches)],
        "batch_class_images": per_class,
        "argmax": [r["metrics"].get("argmax") for r in rounds],  # multi-class: mIoU over defects, per-class IoU, area error
        "pool_size": pool_size,
        "cost_per_image": config.cost_per_image,
        "seconds_per_image": seconds,
        "seconds_source": seconds_source,  # the measured median once enough labels are timed, else the estimate
    }


def _mean_curve(histories: list[dict], key: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """x (labelled counts common to all seeds), mean and standard deviation of ``key``."""
    x, values = _curves(histories, key)
    return x, values.mean(0), values.std(0)


def _curves(histories: list[dict], key: str) -> tuple[np.ndarray, np.ndarray]:
    """x (labelled counts common to all seeds) and the ``(seeds, points)`` values of ``key``."""
    length = min(len(h[key]) for h in histories)
    return np.array(histories[0]["labelled"][:length]), np.array([h[key][:length] for h in histories], dtype=np.float64)


def paired_differences(histories: dict[str, list[dict]]) -> dict:
    """Per strategy: its score minus its random baseline's (``paired_baseline``), seed by seed
    (the same seed starts both from the same images), at each label count both reached: mean
    and 95 % interval over seeds."""
    out = {}
    for strategy, runs in histories.items():
        baseline = paired_baseline(strategy, histories)
        pairs = list(zip(runs, histories.get(baseline, [])))
        if strategy == baseline or not pairs:
            continue
        length = min(min(len(a["f1"]), len(b["f1"])) for a, b in pairs)
        while length and any(a["labelled"][:length] != b["labelled"][:length] for a, b in pairs):
            length -= 1
        if not length:
            continue
        diff = np.array([np.subtract(a["f1"][:length], b["f1"][:length]) for a, b in pairs], dtype=np.float64)
        mean, half = interval95(diff)
        out[strategy] = {"baseline": baseline, "labelled": pairs[0][0]["labelled"][:length], "seeds": len(pairs),
                         "mean": mean.round(4).tolist(), "ci95": confidence_bounds(mean, half)}
        if length > 1:  # one figure per seed: the mean difference over the rounds after the shared first one
            over_curve, curve_half = interval95(diff[:, 1:].mean(1, keepdims=True))
            out[strategy]["after_first"] = {"mean": round(float(over_curve[0]), 4),
                                            "ci95": confidence_bounds(over_curve, curve_half)[0]}
    return out


def _mean_over_seeds(series: list[list[float]], digits: int) -> list[float]:
    """Element-wise mean of per-seed series, cut to the shortest."""
    length = min(len(s) for s in series)
    return np.mean([s[:length] for s in series], 0).round(digits).tolist()


def summarise(histories: dict[str, list[dict]], reference_f1: float | None = None, fraction: float = 0.95,
              pool_notes: dict | None = None) -> dict:
    """Per strategy: mean curves with 95 % intervals over seeds, area, labels to reach ``fraction``
    of the reference F1 and what that saves against labelling the whole pool, the forecast and
    when the stop advice came; each strategy's paired difference to random; ``pool_notes``
    (e.g. the pool's crack-free share) are kept as given."""
    summary: dict[str, Any] = {"reference_f1": reference_f1, "target_fraction": fraction, "pool": pool_notes or {},
                               "strategies": {}}
    for strategy, runs in histories.items():
        x, f1, f1_std = _mean_curve(runs, "f1")
        f1_half = interval95(_curves(runs, "f1")[1])[1]
        pool, cost, seconds = runs[0]["pool_size"], runs[0]["cost_per_image"], runs[0]["seconds_per_image"]
        entry = {
            "seeds": len(runs),
            "labelled": x.tolist(),
            "f1_mean": f1.round(4).tolist(),
            "f1_std": f1_std.round(4).tolist(),
            "f1_ci95": confidence_bounds(f1, f1_half),
            "forecast": forecast_labels(x.tolist(), f1.tolist(), pool, cost, seconds),
            "stop_advised_at": [r.get("stop_advised_at") for r in runs],
            "stop_set": any(k is not None for r in runs for k in r.get("stop_kappa", [])),
            "precision_mean": _mean_curve(runs, "precision")[1].round(4).tolist(),
            "recall_mean": _mean_curve(runs, "recall")[1].round(4).tolist(),
            "f1_tol2_mean": _mean_curve(runs, "f1_tol2")[1].round(4).tolist(),
            "curve_area": round(curve_area(x, f1), 4),
            "batch_defect_pixels": _mean_over_seeds([r["batch_defect_pixels"] for r in runs], 5),
            "batch_defect_images": _mean_over_seeds([r["batch_defect_images"] for r in runs], 3),
            "batch_class_images": {
                name: _mean_over_seeds([r["batch_class_images"][name] for r in runs], 3)
                for name in runs[0].get("batch_class_images", {})
            },
            "pool_size": pool,
        }
        entry.update(_final_argmax(runs))
        if reference_f1:
            needed = labels_to_reach(x, f1, fraction * reference_f1)
            entry["labels_to_target"] = needed
            if needed is not None:
                entry["share_of_pool"] = round(needed / pool, 4)
                entry["cost_saved"] = round((pool - needed) * cost, 2)
                entry["hours_saved"] = round((pool - needed) * seconds / 3600, 2)
                entry["cost_of_labels"] = round(needed * cost, 2)
        summary["strategies"][strategy] = entry
    for strategy, entry in summary["strategies"].items():
        random = summary["strategies"].get(paired_baseline(strategy, histories), {}).get("labels_to_target")
        if random and entry.get("labels_to_target"):
            entry["labels_vs_random"] = round(entry["labels_to_target"] / random, 3)
    summary["paired_vs_random"] = paired_differences(histories)
    summary["by_time"] = time_summary(histories)  # F1 at equal labelling hours (timed runs only)
    return summary


def _final_argmax(runs: list[dict]) -> dict:
    """Multi-class runs: the last round's mIoU over defect classes and per-class IoU and area error,
    mean over the seeds that have them (none for binary or older projects)."""
    finals = [r["argmax"][-1] for r in runs if r.get("argmax") and r["argmax"][-1]]
    if not finals:
        return {}

    def mean(values: list) -> float | None:
        values = [v for v in values if v is not None]
        return round(float(np.mean(values)), 4) if values else None

    names = list(finals[0]["classes"])
    return {"final_miou_defects": mean([f["miou_defects"] for f in finals]),
            "final_class_iou": {n: mean([f["classes"][n]["iou"] for f in finals]) for n in names},
            "final_area_error": {n: mean([f["classes"][n]["area_error"] for f in finals]) for n in names}}


def _argmax_table(summary: dict) -> list[str]:
    """Multi-class: the last round's arg-max scores per strategy (mIoU over defects; IoU / area error per class)."""
    rows = {s: e for s, e in summary["strategies"].items() if "final_miou_defects" in e}
    if not rows:
        return []
    names = list(next(iter(rows.values()))["final_class_iou"])

    def cell(value: float | None, fmt: str) -> str:
        return "-" if value is None else format(value, fmt)

    lines = ["## Defect classes (arg-max, last round)", "",
             "Held-out pixels pooled, arg-max class; mIoU over the defect classes (background left out); "
             "each class cell is IoU / area error ((predicted - true) / true), mean over seeds.", "",
             "| strategy | mIoU (defects) | " + " | ".join(names) + " |", "| --- | --- |" + " --- |" * len(names)]
    for strategy, e in rows.items():
        cells = [f"{cell(e['final_class_iou'][n], '.3f')} / {cell(e['final_area_error'][n], '+.0%')}" for n in names]
        lines.append(f"| {strategy} | {cell(e['final_miou_defects'], '.3f')} | " + " | ".join(cells) + " |")
    return lines + [""]


def plot_summary(histories: dict[str, list[dict]], summary: dict, out: Path) -> list[Path]:
    """``learning_curves.png`` (held-out score, precision, recall: mean and 95 % interval over seeds) and
    ``class_balance.png`` (defect share of each selected batch) in ``out``; returns their paths."""
    plt = pyplot()
    paths = [out / "learning_curves.png", out / "class_balance.png"]
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    for (strategy, runs), color in zip(histories.items(), plt.cm.tab10.colors):
        for ax, key in zip(axes, ("f1", "precision", "recall")):
            x, values = _curves(runs, key)
            mean, half = interval95(values)
            style = "--" if strategy == "random" else "-"
            ax.plot(x, mean, style, color=color, marker="o", ms=3, label=f"{strategy} ({len(runs)} seeds)")
            if len(runs) > 1:
                ax.fill_between(x, mean - half, mean + half, color=color, alpha=0.15)
    if summary.get("reference_f1"):
        axes[0].axhline(summary["reference_f1"], color="k", lw=0.8, label="whole pool labelled")
        axes[0].axhline(summary["target_fraction"] * summary["reference_f1"], color="k", lw=0.8, ls=":",
                        label=f"{summary['target_fraction']:.0%} of it")
    labels = LABELS[next(iter(histories.values()))[0].get("task", "segmentation")]
    for ax, key in zip(axes, ("score", "precision", "recall")):
        ax.set_xlabel("labelled images")
        ax.set_title(f"held-out {labels[key]}", fontsize=9)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(paths[0], dpi=100)
    plt.close(fig)

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for (strategy, entry), color in zip(summary["strategies"].items(), plt.cm.tab10.colors):
        for ax, key in zip(axes, ("batch_defect_pixels", "batch_defect_images")):
            ax.plot(range(len(entry[key])), entry[key], "--" if strategy == "random" else "-", color=color, marker="o", ms=3,
                    label=strategy)
    axes[0].set_title("share of defect pixels in each selected batch", fontsize=9)
    axes[1].set_title("share of selected images holding a defect", fontsize=9)
    for ax in axes:
        ax.set_xlabel("labelling batch (0 = initial)")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(paths[1], dpi=100)
    plt.close(fig)
    return paths


def _pool_note(pool: dict) -> str:
    share = pool.get("crack_free_share")
    return "" if share is None else f" ({share:.0%} of them crack-free)"


def _paired_table(summary: dict, score: str) -> list[str]:
    """Each strategy's score minus random's, paired by seed, at each label count: mean [95 % interval]."""
    lines = []
    for strategy, paired in summary["paired_vs_random"].items():
        header, cells = paired_cells(paired)
        baseline = paired["baseline"]
        lines += ["", f"{strategy} - {baseline}, {score} paired by seed ({paired['seeds']} seeds: mean [95 % interval]):", "",
                  "| labelled | " + " | ".join(header) + " |",
                  "| --- |" + " --- |" * len(cells), f"| {strategy} - {baseline} | " + " | ".join(cells) + " |"]
    return lines


def _forecast_lines(summary: dict, score: str) -> list[str]:
    """The forecast of each strategy's mean curve and when the stop advice came in each seed."""
    lines = ["", "## Forecast and stop advice", "",
             f"An inverse power law {score}(n) = a - b n^-c fitted to each mean curve ({INTERVAL}):", ""]
    for strategy, e in summary["strategies"].items():
        advised = ", ".join("-" if n is None else str(n) for n in e["stop_advised_at"])
        stop = f"; stop advice (stop-set kappa) at {advised} labels by seed" if e["stop_set"] else ""
        lines.append(f"- {strategy}: {forecast_text(e['forecast'], score)}{stop}")
    return lines


def _class_share_table(summary: dict) -> list[str]:
    """Per strategy and defect class: share of the images of each batch that hold the class."""
    rows = [(strategy, name, shares) for strategy, e in summary["strategies"].items()
            for name, shares in e.get("batch_class_images", {}).items()]
    if not rows:
        return []
    batches = max(len(shares) for _, _, shares in rows)
    lines = ["Share of the images of each labelling batch holding each defect class (batch 0 = initial set):", "",
             "| strategy | class | " + " | ".join(str(b) for b in range(batches)) + " |",
             "| --- | --- |" + " --- |" * batches]
    lines += [f"| {strategy} | {name} | " + " | ".join(f"{v:.2f}" for v in shares) + " |" for strategy, name, shares in rows]
    return lines + [""]


def write_report(histories: dict[str, list[dict]], out: str | Path, reference_f1: float | None = None,
                 title: str = "Active learning", pool_notes: dict | None = None) -> Path:
    """``report.json``, ``learning_curves.png``, ``class_balance.png`` and ``report.md`` in ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    summary = summarise(histories, reference_f1, pool_notes=pool_notes)
    (out / "report.json").write_text(json.dumps(summary, indent=1))
    plot_summary(histories, summary, out)
    any_run = next(iter(histories.values()))[0]
    labels = LABELS[any_run.get("task", "segmentation")]
    score = labels["score"]
    lines = [
        f"# {title}",
        "",
        f"Pool of {any_run['pool_size']} images{_pool_note(summary['pool'])}; held-out scores are {score} / "
        f"{labels['precision']} / {labels['recall']} ({labels['protocol']}), mean over seeds; the band in the plots and "
        "the bracketed figures are 95 % intervals over seeds (Student's t).",
        "",
        "![learning curves](learning_curves.png)",
        "",
        f"| strategy | seeds | final labelled | final {score} | 95 % interval | {score} area | labels to target | share of pool "
        "| vs random | cost saved | hours saved |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for strategy, e in summary["strategies"].items():
        if not e["labelled"]:  # a project before its first finished round
            lines.append(f"| {strategy} | {e['seeds']} | no finished round yet |" + " - |" * 8)
            continue
        final_interval = e["f1_ci95"][-1]
        cells = [strategy, e["seeds"], e["labelled"][-1], f"{e['f1_mean'][-1]:.3f}",
                 f"[{final_interval[0]:.3f}, {final_interval[1]:.3f}]" if final_interval else "-", f"{e['curve_area']:.3f}",
                 (e.get("labels_to_target") or "not reached") if reference_f1 else "-",
                 f"{e['share_of_pool']:.0%}" if "share_of_pool" in e else "-",
                 f"{e['labels_vs_random']:.2f}" if "labels_vs_random" in e else "-",
                 f"${e['cost_saved']:.2f}" if "cost_saved" in e else "-",
                 f"{e['hours_saved']:.1f}" if "hours_saved" in e else "-"]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    if reference_f1:
        lines += ["", f"Target: {summary['target_fraction']:.0%} of the {score} of a model trained on the whole pool "
                  f"({reference_f1:.3f}). Savings are against labelling the whole pool at "
                  f"${any_run['cost_per_image']:.2f} and {any_run['seconds_per_image']:.0f} s per image."]
    if any_run.get("seconds_source"):
        lines += ["", f"Labelling time per image in the cost and time figures: {any_run['seconds_per_image']:.1f} s "
                  f"({any_run['seconds_source']})."]
    lines += _paired_table(summary, score) + _forecast_lines(summary, score)
    lines += [
        "",
        "## What each round selected",
        "",
        "Active learning tends to pick images that hold the rare defect class; random sampling picks them at their base rate.",
        "",
        "![class balance](class_balance.png)",
        "",
    ]
    lines += _class_share_table(summary)
    lines += _argmax_table(summary)
    lines += time_lines(summary["by_time"])
    report = out / "report.md"
    report.write_text("\n".join(lines) + "\n")
    return report
