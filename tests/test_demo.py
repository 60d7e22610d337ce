import pytest

from crackal.demo import run_demo


@pytest.mark.slow
def test_demo_writes_a_readable_report(tmp_path):
    report = run_demo(tmp_path / "demo", count=40, size=64, seeds=1, rounds=3, round_steps=4, progress=None)
    text = report.read_text()
    assert "BALD" in text and "random" in text and "held-out F1" in text and "cost saved" in text
    assert "## Forecast and stop advice" in text and "forecast: F1" in text and "stop advice (stop-set kappa)" in text
    for name in ("examples.png", "simulation/learning_curves.png", "simulation/class_balance.png",
                 "predictions/measurements.csv", "simulation/report.json"):
        assert (tmp_path / "demo" / name).is_file(), name
    assert "One seed: no interval, so no verdict" in text


@pytest.mark.parametrize("bounds, verdict", [([0.014, 0.105], "BALD is ahead of random"),
                                             ([-0.03, 0.15], "do not settle"),
                                             ([-0.2, -0.01], "random is ahead of BALD")])
def test_the_verdict_follows_the_interval_of_the_paired_curve_difference(bounds, verdict):
    from crackal.demo import _verdict_text

    paired = {"labelled": [8, 16, 24], "seeds": 3, "after_first": {"mean": sum(bounds) / 2, "ci95": bounds}}
    text = _verdict_text(paired)
    assert verdict in text and "averaged over 16-24 labels" in text and f"{bounds[0]:+.3f}" in text
