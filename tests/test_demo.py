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
