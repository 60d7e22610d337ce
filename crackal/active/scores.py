"""The held-out scores of a round, whatever the task: one headline score (strict F1 for
segmentation, mAP@0.5 for detection), a precision, a recall, a second score and the loss."""

from __future__ import annotations

LABELS = {
    "segmentation": {"score": "F1", "precision": "precision", "recall": "recall", "score_2": "F1 2px",
                     "protocol": "strict pixels, ODS threshold"},
    "detection": {"score": "mAP@0.5", "precision": "box precision", "recall": "pixel recall", "score_2": "mAP@0.5:0.95",
                  "protocol": "COCO mAP; box precision and pixel recall (1 - segmentation error) at the box threshold chosen there"},
}


def round_scores(metrics: dict) -> dict[str, float | None]:
    """``score``, ``precision``, ``recall``, ``score_2`` and ``loss`` (None where the task has none)."""
    if metrics.get("task") == "detection":
        recall = 1 - metrics["segmentation_error"] if "segmentation_error" in metrics else None
        return {"score": metrics["map_50"], "precision": metrics.get("box_precision"), "recall": recall,
                "score_2": metrics["map"], "loss": None}
    strict = metrics["strict"]
    return {"score": strict["f1"], "precision": strict.get("precision"), "recall": strict.get("recall"),
            "score_2": metrics.get("tol2", {}).get("f1"), "loss": metrics.get("loss")}
