import pytest

from crackal.demo import run_demo


@pytest.mark.slow
def test_demo_writes_a_readable_report(tmp_path):
    report = run_demo(tmp_path / "demo", count=30, size=64, seeds=1, rounds=2, epochs=1, progress=None)
    text = report.read_text()
    assert "BALD" in text and "random" in text and "held-out F1" in text and "cost saved" in text
    for name in ("examples.png", "simulation/learning_curves.png", "simulation/class_balance.png",
                 "predictions/measurements.csv", "simulation/report.json"):
        assert (tmp_path / "demo" / name).is_file(), name
