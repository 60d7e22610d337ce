import json

import numpy as np

from crackal.active.config import ALConfig
from crackal.active.report import summarise, write_report
from crackal.active.stopping import plateaued, stop_reason
from crackal.metrics.curves import curve_area, labels_to_reach


def rnd(labelled, f1, loss=1.0, state="done", unc=0.1):
    return {"round": labelled, "state": state, "labelled": labelled, "pool_uncertainty": unc,
            "metrics": {"strict": {"f1": f1}, "loss": loss}}


def test_plateau_needs_both_f1_and_loss_to_stall():
    rounds = [rnd(10, 0.5, 1.0), rnd(20, 0.6, 0.8), rnd(30, 0.601, 0.8), rnd(40, 0.6, 0.81)]
    assert plateaued(rounds, patience=2, min_delta=0.005)
    rounds[-1] = rnd(40, 0.6, 0.5)  # loss still falling
    assert not plateaued(rounds, patience=2, min_delta=0.005)
    assert not plateaued(rounds[:2], patience=2, min_delta=0.005)


def test_stop_reasons():
    config = ALConfig(budget=30, min_uncertainty=0.05)
    assert stop_reason([], config, 10, 50) is None
    assert "budget" in stop_reason([rnd(30, 0.5)], config, 30, 50)
    assert stop_reason([rnd(20, 0.5)], config, 30, 50) is None  # the queue is not trained on yet
    assert "exhausted" in stop_reason([rnd(20, 0.5)], ALConfig(), 20, 0)
    assert "uncertainty" in stop_reason([rnd(20, 0.5, unc=0.01)], config, 20, 30)


def test_labels_to_reach_and_area():
    x, f1 = np.array([10, 20, 30]), np.array([0.5, 0.8, 0.9])
    assert labels_to_reach(x, f1, 0.75) == 20 and labels_to_reach(x, f1, 0.95) is None
    assert curve_area(x, f1) == (0.65 * 10 + 0.85 * 10) / 20


def history(f1s, shares):
    return {"labelled": [10, 20, 30], "f1": f1s, "precision": f1s, "recall": f1s, "f1_tol2": f1s, "loss": [1, 1, 1],
            "pool_uncertainty": [0.1] * 3, "batch_defect_pixels": shares, "batch_defect_images": [1.0, 0.5, 0.5],
            "pool_size": 100, "cost_per_image": 0.5, "seconds_per_image": 30.0}


def test_summary_and_report_files(tmp_path):
    histories = {
        "bald": [history([0.5, 0.8, 0.9], [0.02, 0.06, 0.05]), history([0.5, 0.78, 0.88], [0.02, 0.05, 0.05])],
        "random": [history([0.5, 0.6, 0.8], [0.02, 0.02, 0.02]), history([0.5, 0.62, 0.82], [0.02, 0.02, 0.02])],
    }
    summary = summarise(histories, reference_f1=0.82)
    bald, random = summary["strategies"]["bald"], summary["strategies"]["random"]
    assert bald["labels_to_target"] == 20 and random["labels_to_target"] == 30
    assert bald["labels_vs_random"] == round(20 / 30, 3)
    assert bald["cost_saved"] == 40.0 and bald["hours_saved"] == round(80 * 30 / 3600, 2)
    assert bald["f1_mean"] == [0.5, 0.79, 0.89]
    report = write_report(histories, tmp_path, reference_f1=0.82)
    text = report.read_text()
    assert "| bald | 2 | 30 |" in text and "learning_curves.png" in text
    assert (tmp_path / "learning_curves.png").is_file() and (tmp_path / "class_balance.png").is_file()
    assert json.loads((tmp_path / "report.json").read_text())["reference_f1"] == 0.82


def argmax(miou, crack_iou, crack_error):
    return {"miou_defects": miou, "classes": {"crack": {"iou": crack_iou, "area_error": crack_error},
                                              "pothole": {"iou": None, "area_error": None}}}


def test_multiclass_report_has_the_last_rounds_miou_and_area_error(tmp_path):
    runs = [history([0.5, 0.6, 0.7], [0.02] * 3), history([0.5, 0.6, 0.7], [0.02] * 3)]
    runs[0]["argmax"] = [None, argmax(0.1, 0.2, 0.5), argmax(0.3, 0.4, -0.2)]
    runs[1]["argmax"] = [None, argmax(0.1, 0.2, 0.5), argmax(0.5, 0.6, 0.2)]
    summary = summarise({"bald": runs})
    bald = summary["strategies"]["bald"]
    assert bald["final_miou_defects"] == 0.4 and bald["final_class_iou"] == {"crack": 0.5, "pothole": None}
    assert bald["final_area_error"]["crack"] == 0.0
    text = write_report({"bald": runs}, tmp_path).read_text()
    assert "| bald | 0.400 | 0.500 / +0% | - / - |" in text
