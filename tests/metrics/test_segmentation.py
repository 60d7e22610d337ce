import numpy as np
import pytest

from crackal.metrics.segmentation import (
    SegmentationEvaluator,
    count_at_or_above,
    roc_auc_from_histograms,
    summary_rows,
    threshold_counts,
)

T = np.round(np.linspace(0.01, 0.99, 99), 2)


def line_image(shift: int = 0, size: int = 32):
    truth = np.zeros((size, size), np.uint8)
    truth[16, 4:28] = 1
    prob = np.zeros((size, size), np.float32)
    prob[16 + shift, 4:28] = 0.9
    return prob, truth


def evaluate(pairs, names=("background", "crack"), **kw):
    ev = SegmentationEvaluator(list(names), **kw)
    for prob, truth in pairs:
        ev.update(np.stack([1 - prob, prob]), truth)
    return ev.compute()


def test_count_at_or_above_matches_brute_force():
    values = np.random.default_rng(0).random(1000)
    expected = [(values >= t).sum() for t in T]
    assert count_at_or_above(values, T).tolist() == expected


def test_strict_counts_match_brute_force():
    rng = np.random.default_rng(1)
    prob, truth = rng.random((20, 30)), rng.random((20, 30)) > 0.9
    counts = threshold_counts(prob, truth, 0, T)
    for j, t in enumerate(T[::10]):
        pred = prob >= t
        k = j * 10
        assert counts[:, k].tolist() == [pred.sum(), (pred & truth).sum(), truth.sum(), (pred & truth).sum()]


def test_tolerance_forgives_a_one_pixel_offset_but_strict_does_not():
    result = evaluate([line_image(shift=1)], tolerances=(0, 1, 2))
    crack = result["classes"]["crack"]
    assert crack["tol0"]["ods"]["f1"] == 0.0
    assert crack["tol1"]["ods"]["f1"] == 1.0
    assert crack["tol2"]["ods"]["f1"] == 1.0


def test_tolerance_is_euclidean():
    # a 2-px offset is within 2 px but not within 1 px
    result = evaluate([line_image(shift=2)], tolerances=(1, 2))
    assert result["classes"]["crack"]["tol1"]["ods"]["f1"] == 0.0
    assert result["classes"]["crack"]["tol2"]["ods"]["f1"] == 1.0


def test_tolerance_precision_and_recall_are_asymmetric():
    truth = np.zeros((20, 20), np.uint8)
    truth[10, 2:18] = 1
    prob = np.zeros((20, 20), np.float32)
    prob[9:12, 2:18] = 0.8  # a band 3 px wide around the crack
    crack = evaluate([(prob, truth)], tolerances=(0, 1))["classes"]["crack"]
    assert crack["tol0"]["ods"]["precision"] == pytest.approx(1 / 3, abs=1e-3)
    assert crack["tol0"]["ods"]["recall"] == 1.0
    assert crack["tol1"]["ods"]["precision"] == 1.0


def test_ods_pools_counts_and_ois_picks_per_image():
    # image A is perfect only above 0.5, image B only below 0.3: no single threshold suits both
    pa, ta = line_image()
    pa[5, 5] = 0.5  # a false positive that thresholds <= 0.5 keep
    pb, tb = line_image()
    pb = pb * (0.3 / 0.9)
    result = evaluate([(pa, ta), (pb, tb)], tolerances=(0,))
    crack = result["classes"]["crack"]["tol0"]
    assert crack["ois"]["f1"] == 1.0
    assert crack["ods"]["f1"] < 1.0
    assert crack["ods"]["iou"] <= crack["ods"]["f1"]


def test_fixed_threshold_row():
    crack = evaluate([line_image()], fixed_threshold=0.95)["classes"]["crack"]
    assert crack["tol0"]["fixed"]["threshold"] == 0.95 and crack["tol0"]["fixed"]["f1"] == 0.0


def test_auc_matches_the_rank_statistic():
    rng = np.random.default_rng(2)
    truth = rng.random((40, 40)) > 0.9
    prob = np.clip(rng.normal(0.4 + 0.3 * truth, 0.15), 0, 1).astype(np.float32)
    auc = evaluate([(prob, truth.astype(np.uint8))])["classes"]["crack"]["auc"]
    pos, neg = prob[truth], prob[~truth]
    exact = ((pos[:, None] > neg[None, :]).mean() + 0.5 * (pos[:, None] == neg[None, :]).mean())
    assert auc == pytest.approx(exact, abs=0.005)
    assert roc_auc_from_histograms(np.array([0, 5]), np.array([5, 0])) == 1.0


def test_multiclass_scores_each_defect_class_and_ignores_255():
    mask = np.zeros((16, 16), np.uint8)
    mask[2, :] = 1
    mask[8:12, 8:12] = 2
    mask[0, 0] = 255
    probs = np.zeros((3, 16, 16), np.float32)
    probs[0] = 1.0
    probs[:, 2, :] = [[0.0], [1.0], [0.0]]
    probs[:, 8:12, 8:12] = np.array([0.2, 0.0, 0.8])[:, None, None]
    probs[:, 0, 0] = [0.0, 0.0, 1.0]  # wrong, but ignored
    ev = SegmentationEvaluator(["background", "crack", "pothole"], tolerances=(0,))
    ev.update(probs, mask)
    result = ev.compute()
    assert result["classes"]["crack"]["tol0"]["ods"]["f1"] == 1.0
    assert result["classes"]["pothole"]["tol0"]["ods"]["f1"] == 1.0
    assert result["mean"]["tol0_ods_f1"] == 1.0


def test_every_row_names_its_protocol():
    result = evaluate([line_image(shift=1)], tolerances=(0, 2), fixed_threshold=0.5)
    rows = summary_rows(result)
    labels = [label for _, label, _ in rows]
    assert any(label.startswith("ODS-F1 strict") for label in labels)
    assert any(label.startswith("ODS-F1 tolerance 2px") for label in labels)
    assert "OIS-F1 strict" in labels and "pixel ROC-AUC (strict)" in labels
    assert set(result["protocol"]) >= {"ods", "ois", "tolerance", "auc", "iou", "fixed"}


def test_multiclass_metrics_by_hand():
    mask = np.zeros((10, 10), np.uint8)
    mask[0, :] = 1  # 10 crack pixels
    mask[5:7, :] = 2  # 20 pothole pixels
    predicted = np.zeros((10, 10), np.int64)
    predicted[0, :6] = predicted[1, :4] = 1  # crack: 6 hits, 4 false alarms
    predicted[5, :] = predicted[9, :] = 2  # pothole: 10 hits, 10 false alarms
    probs = np.full((3, 10, 10), 0.05, np.float32)
    np.put_along_axis(probs, predicted[None], 0.9, axis=0)
    ev = SegmentationEvaluator(["background", "crack", "pothole"], tolerances=(0,), fixed_threshold=0.5)
    ev.update(probs, mask)
    result = ev.compute()["classes"]
    crack, pothole = result["crack"]["tol0"], result["pothole"]["tol0"]
    assert (crack["fixed"]["precision"], crack["fixed"]["recall"]) == (pytest.approx(0.6), pytest.approx(0.6))
    assert crack["ods"]["f1"] == pytest.approx(0.6) and crack["ods"]["iou"] == pytest.approx(6 / 14, abs=1e-4)
    assert (pothole["fixed"]["precision"], pothole["fixed"]["recall"]) == (pytest.approx(0.5), pytest.approx(0.5))
    assert pothole["ods"]["iou"] == pytest.approx(10 / 30, abs=1e-4)
