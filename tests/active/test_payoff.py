"""Mixed pools, the stop set and its kappa, and the simulation report's repeatability figures."""

from __future__ import annotations

import json

import numpy as np
import pytest

from crackal.data.io import write_png
from crackal.data.layout import Pair


def _pairs(folder, cracked: int, free: int, size: int = 32) -> list[Pair]:
    pairs = []
    for i in range(cracked + free):
        image = np.random.default_rng(i).integers(0, 255, (size, size, 3), dtype=np.uint8)
        mask = np.zeros((size, size), np.uint8)
        if i < cracked:
            mask[size // 2, 4:-4] = 255
        write_png(folder / "images" / f"im{i:02d}.png", image)
        write_png(folder / "masks" / f"im{i:02d}.png", mask)
        pairs.append(Pair(folder / "images" / f"im{i:02d}.png", folder / "masks" / f"im{i:02d}.png"))
    return pairs


@pytest.mark.parametrize("share, kept_free, kept_cracked", [(None, 3, 9), (0.5, 3, 3), (0.25, 3, 9), (0.2, 2, 9)])
def test_a_mixed_pool_has_the_crack_free_share_asked_for(tmp_path, share, kept_free, kept_cracked):
    from crackal.active.simulate import is_crack_free, mix_pool

    pool = _pairs(tmp_path, cracked=9, free=3)
    mixed, measured = mix_pool(pool, 2, share, seed=1)
    free = sum(is_crack_free(p, 2) for p in mixed)
    assert (free, len(mixed) - free) == (kept_free, kept_cracked)
    assert measured == pytest.approx(kept_free / (kept_free + kept_cracked))


def test_the_simulation_report_gives_the_pool_share_intervals_and_paired_differences(tmp_path):
    from crackal.active.simulate import simulate
    from tests.active.conftest import FAST

    pool = _pairs(tmp_path / "data", cracked=10, free=4)
    report = simulate(pool, tmp_path / "sim", ["random", "random+warm"], seeds=2, rounds=2, heldout=3, reference=False,
                      crack_free_share=0.5, initial=2, query_size=2, stop_set_size=0,
                      train={**FAST, "crop_size": 32, "base_channels": 4, "samples_per_epoch": 4})
    summary = json.loads((report.parent / "report.json").read_text())
    assert summary["pool"]["crack_free_share"] == pytest.approx(0.5)
    text = report.read_text()
    assert "(50% of them crack-free)" in text and "random+warm - random" in text and "95 % interval" in text
    paired = summary["paired_vs_random"]["random+warm"]
    from crackal.active.report import project_history

    warm = [project_history(tmp_path / "sim" / "random+warm" / f"seed{s}") for s in range(2)]
    cold = [project_history(tmp_path / "sim" / "random" / f"seed{s}") for s in range(2)]
    expected = np.mean([np.subtract(w["f1"], c["f1"]) for w, c in zip(warm, cold)], 0)
    assert paired["mean"] == pytest.approx(expected.round(4).tolist(), abs=1e-4)
    assert paired["mean"][0] == 0  # round 1 is shared: the same model
    after_first = np.mean([np.mean(np.subtract(w["f1"], c["f1"])[1:]) for w, c in zip(warm, cold)])
    assert paired["after_first"]["mean"] == pytest.approx(after_first, abs=1e-4)
    assert f"mean over {paired['labelled'][1]}-{paired['labelled'][-1]}" in text
    entry = summary["strategies"]["random"]
    low, high = entry["f1_ci95"][-1]
    assert low <= entry["f1_mean"][-1] <= high
    assert warm[0]["loss"] and summary["strategies"]["random+warm"]["forecast"]["status"] == "not enough rounds"


def test_the_paired_difference_over_the_curve_is_one_figure_per_seed():
    from crackal.active.report import paired_differences

    def run(f1):
        return {"labelled": [8, 16, 24], "f1": f1}

    histories = {"bald": [run([0.3, 0.5, 0.6]), run([0.2, 0.5, 0.7]), run([0.4, 0.6, 0.7])],
                 "random": [run([0.3, 0.6, 0.2]), run([0.2, 0.3, 0.4]), run([0.4, 0.4, 0.3])]}
    paired = paired_differences(histories)["bald"]
    assert paired["mean"] == pytest.approx([0.0, 0.1, 0.3667], abs=1e-4)
    # per seed the mean of -0.1, +0.4 / +0.2, +0.3 / +0.2, +0.4 is 0.15, 0.25, 0.3: mean 0.2333, t(2) interval
    half = 4.3027 * np.std([0.15, 0.25, 0.3], ddof=1) / np.sqrt(3)
    assert paired["after_first"]["mean"] == pytest.approx(0.2333, abs=1e-4)
    assert paired["after_first"]["ci95"] == pytest.approx([0.2333 - half, 0.2333 + half], abs=1e-3)
    assert paired["after_first"]["ci95"][0] > 0  # steadier than any single label count's interval
    assert paired["ci95"][1][0] < 0


def test_the_stop_set_is_fixed_and_its_kappa_compares_rounds(tmp_path, al_data, capsys):
    from crackal.active.loop import run_round
    from crackal.active.store import ProjectStore
    from crackal.cli import main
    from tests.active.conftest import make_project

    project = make_project(tmp_path / "p", al_data, stop_set_size=3, stop_kappa=-1.0, stop_rounds=1, strategy="random",
                           base_channels=4, samples_per_epoch=4)
    first = run_round(project)
    store = ProjectStore(project)
    chosen = [r.name for r in store.stop_set()]
    store.close()
    second = run_round(project)
    store = ProjectStore(project)
    assert [r.name for r in store.stop_set()] == chosen and len(chosen) == 3  # chosen once, then kept
    store.close()
    assert "stop_kappa" not in first.metrics  # nothing to compare with in round 1
    before = np.load(project / "rounds" / "001" / "stop_set.npz")
    after = np.load(project / "rounds" / "002" / "stop_set.npz")
    assert sorted(before.files) == sorted(chosen)
    from crackal.metrics.segmentation import cohen_kappa

    pixels = [np.concatenate([f[n].ravel() for n in chosen]) for f in (before, after)]
    assert second.metrics["stop_kappa"] == pytest.approx(cohen_kappa(*pixels))
    assert main(["al", "status", str(project)]) == 0
    shown = capsys.readouterr().out
    assert "forecast: not enough rounds (2 rounds" in shown and "stop: predictions on the stop set have stabilised" in shown
