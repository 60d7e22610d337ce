import pytest

from crackal.demo import run_demo


@pytest.mark.slow
def test_demo_writes_a_readable_report(tmp_path):
    report = run_demo(tmp_path / "demo", epochs=2, count=24, progress=False)
    text = report.read_text()
    assert "ODS-F1" in text and "tolerance 2px" in text and "darkness detector" in text
    for name in ("examples.png", "run/training_curves.png", "predictions/measurements.csv", "run/evaluation_test.json"):
        assert (tmp_path / "demo" / name).is_file(), name
