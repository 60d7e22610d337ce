"""The README's main job: an active-learning simulation on synthetic crack images.

Synthesises a dataset, runs BALD (MC-Dropout, head-only) and random sampling for three seeds
with the ground truth as labeller, then predicts the held-out images with the last BALD
model, and writes ``report.md``: the verdict (BALD minus random, paired by seed, with its
interval), learning curves against random, what each round selected, labelling cost and time
saved, and example predictions.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TypedDict

import numpy as np

from crackal.active.config import ALConfig
from crackal.active.forecast import forecast_text
from crackal.active.pairing import difference_text
from crackal.active.simulate import simulate
from crackal.active.store import ProjectStore
from crackal.api.segmentation import predict, synth
from crackal.data.layout import Pair, find_pairs, load_pair
from crackal.progress import Progress


class Schedule(TypedDict):
    """The ``ALConfig`` fields of the auto training schedule."""

    steps_per_label: int
    min_steps: int


STOP_SET = 16  # unlabelled pool images whose predictions are compared between rounds (the stop advice)
SCHEDULE: Schedule = {"steps_per_label": 2, "min_steps": 48}  # the auto schedule, sized to keep the demo (3 seeds) within 9 minutes


def _schedule_text(round_steps: int | str, most_labels: int) -> str:
    if round_steps != "auto":
        return f"{round_steps} steps"
    slice_from = ALConfig.val_min / ALConfig.val_share
    validation = ("stopping early on a validation slice of the labelled images" if most_labels >= slice_from else
                  f"on every labelled image, keeping the last weights (a validation slice only from {slice_from:.0f} labels)")
    return (f"a number of steps that grows with the labelled set ({SCHEDULE['steps_per_label']} per label, at least "
            f"{SCHEDULE['min_steps']}; crops of about 3/4 of the image), {validation}")


def _stop_text(advised_at: list[int | None]) -> str:
    """The stop advice of each seed in words."""
    if all(n is None for n in advised_at):
        return ("Stop advice: not yet; the predictions on the stop set still change from round to round, so more "
                "labels are still teaching the model.")
    return "Stop advice (predictions on the stop set stable): " + ", ".join(
        f"seed {seed}: {'not yet' if n is None else f'at {n} labels'}" for seed, n in enumerate(advised_at)) + "."


def _verdict_text(paired: dict) -> str:
    """The demo's verdict: BALD minus random over the rounds after the shared first one, paired
    by seed, and whether its 95 % interval excludes zero."""
    labelled, over = paired["labelled"], paired.get("after_first")
    if not over or not over["ci95"]:
        return "One seed: no interval, so no verdict (run more seeds: `--seeds 3`)."
    low, high = over["ci95"]
    verdict = ("BALD is ahead of random: the interval excludes zero" if low > 0 else
               "random is ahead of BALD: the interval excludes zero" if high < 0 else
               "the interval spans zero: these seeds do not settle which is ahead")
    return (f"**Verdict: BALD minus random, F1 at the same labels averaged over {labelled[1]}-{labelled[-1]} labels and "
            f"paired by seed, is {difference_text(over['mean'], over['ci95'])}** (95 % interval over {paired['seeds']} "
            f"seeds): {verdict}.")


def _examples_figure(pairs: list[Pair], prediction_dir: Path, path: Path, count: int = 4) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from crackal.data.io import read_image

    crack_pixels = [int(load_pair(p, 2)[1].sum()) for p in pairs]
    order = np.argsort(crack_pixels)[::-1]
    chosen = [pairs[i] for i in order[: count - 1]] + [pairs[order[-1]]]  # the most cracked, and one without
    fig, axes = plt.subplots(len(chosen), 3, figsize=(7.5, 2.6 * len(chosen)))
    for row, pair in zip(np.atleast_2d(axes), chosen):
        image, truth = load_pair(pair, 2)
        panels = (image, truth, read_image(prediction_dir / "overlays" / f"{pair.name}.png"))
        for ax, panel, title in zip(row, panels, ("image", "ground truth", "prediction (red)")):
            ax.imshow(panel, cmap="gray")
            ax.set_title(f"{pair.name}: {title}", fontsize=8)
            ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def run_demo(
    out: str | Path = "demo_output",
    count: int = 160,
    size: int = 128,
    seeds: int = 3,
    rounds: int = 5,
    round_steps: int | str = "auto",
    seed: int = 0,
    crack_free: float = 0.7,
    progress: bool | Progress = True,
) -> Path:
    """Run the whole demo in ``out`` (finished parts are reused); returns ``out/report.md``.
    ``crack_free`` is the share of synthesised images without a crack."""
    out, progress = Path(out), Progress.of(progress)
    started = time.perf_counter()
    data = out / "data"
    if not (data / "classes.json").is_file():  # most frames of a road survey hold no crack
        synth(data, count=count, size=size, seed=seed, crack_free=crack_free)
    pairs = find_pairs(data)
    free_share = float(np.mean([not load_pair(p, 2)[1].any() for p in pairs]))
    simulation = out / "simulation"
    simulate(
        pairs, simulation, ["bald", "random"], seeds=seeds, rounds=rounds, heldout=0.2, progress=progress,
        on_round=lambda item: progress.line(item if isinstance(item, str) else
                                            f"  round {item.round}: {item.labelled} labelled, "
                                            f"held-out F1 {item.metrics['strict']['f1']:.3f}"),
        initial=8, query_size=8, iterations=20, round_steps=round_steps, stop_set_size=STOP_SET, **SCHEDULE,
        train={"samples_per_epoch": 32, "crop_size": max(32, size * 3 // 4 // 32 * 32), "batch_size": 8},
    )
    summary = json.loads((simulation / "report.json").read_text())
    project = simulation / "bald" / "seed0"
    with ProjectStore(project) as store:
        final = store.rounds()[-1]
        heldout = [Pair(r.path, r.truth_path) for r in store.heldout() if r.truth_path]  # a simulation's: all have their truth
    held_dir = out / "heldout_images"
    held_dir.mkdir(exist_ok=True)
    for pair in heldout:
        (held_dir / pair.image.name).write_bytes(pair.image.read_bytes())
    records = predict(Path(final["checkpoint"]), held_dir, out / "predictions", gsd=0.002, progress=progress)
    _examples_figure(heldout, out / "predictions", out / "examples.png")

    bald, random = summary["strategies"]["bald"], summary["strategies"]["random"]
    simulation_report = (simulation / "report.md").read_text().split("\n", 2)[2]
    simulation_report = simulation_report.replace("](", "](simulation/")
    lines = [
        "# crackal demo: active learning on synthetic crack images",
        "",
        f"{count} synthetic road and concrete images ({size}x{size}, cracks 1-6 px wide, shadows, stains, lane "
        f"markings and joints as distractors; as in a real survey most images, {free_share:.0%}, hold no crack); "
        f"{len(heldout)} held out, the rest is the pool. Each run starts from 8 random labelled images and "
        f"labels 8 more per round, retraining crackal's default model (a U-Net on an EfficientNet-Lite0 encoder that "
        f"starts from ImageNet weights) every round for "
        f"{_schedule_text(round_steps, bald['labelled'][-1])}. BALD scores each image with MC-Dropout (20 samples of the head "
        f"only); random "
        f"sampling is the baseline. {seeds} seeds. After each round the model also predicts a fixed set of "
        f"{STOP_SET} unlabelled images: when its predictions agree with the previous round's (Cohen's kappa above "
        f"0.99 twice running) the report advises stopping.",
        "",
        f"**With {bald['labelled'][-1]} labelled images the held-out F1 is {bald['f1_mean'][-1]:.3f} with BALD and "
        f"{random['f1_mean'][-1]:.3f} with random sampling** (area under the learning curve "
        f"{bald['curve_area']:.3f} vs {random['curve_area']:.3f}). A model trained on the whole pool reaches "
        f"{summary['reference_f1']:.3f}.",
        "",
        _verdict_text(summary["paired_vs_random"]["bald"]),
        "",
        f"BALD's learning curve, {forecast_text(bald['forecast'])}. {_stop_text(bald['stop_advised_at'])}",
        "",
        simulation_report.strip(),
        "",
        "## The last BALD model on the held-out images",
        "",
        f"Round {final['round']}, {final['labelled']} labelled images: held-out F1 {final['metrics']['strict']['f1']:.3f} "
        f"strict, {final['metrics']['tol2']['f1']:.3f} with 2 px tolerance (ODS threshold).",
        "",
        "![examples](examples.png)",
        "",
        f"With a ground sampling distance of 2 mm/px: mean crack length {np.mean([r.get('crack_length_m', 0) for r in records]):.2f} m "
        f"and mean crack area {1e4 * np.mean([r.get('crack_area_m2', 0) for r in records]):.1f} cm^2 per image "
        "(`predictions/measurements.csv`).",
        "",
        "## Files",
        "",
        "- `data/`: the synthetic dataset; `simulation/`: one project per strategy and seed (`project.db`, labels, "
        "each round's model), `report.json`, the plots",
        "- `predictions/`: masks, probability maps, overlays and measurements of the held-out images",
        "",
        f"Total time {time.perf_counter() - started:.0f} s.",
    ]
    report = out / "report.md"
    report.write_text("\n".join(lines) + "\n")
    return report
