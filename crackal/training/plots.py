"""Plots of a training run: loss and validation scores per epoch, the precision-recall flow."""

from __future__ import annotations

from pathlib import Path


def pyplot():
    """matplotlib's pyplot on the file-only Agg backend (imported late: it is slow to load)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_history(history: list[dict], path: str | Path) -> None:
    """Two panels: train/val loss, and validation precision/recall/F1 (strict, ODS) or mAP."""
    if not history:
        return
    plt = pyplot()
    epochs = [h["epoch"] for h in history]
    fig, (ax_loss, ax_score) = plt.subplots(1, 2, figsize=(10, 3.8))
    ax_loss.plot(epochs, [h["train_loss"] for h in history], label="train loss")
    validated = [h for h in history if "val_loss" in h]
    if validated:
        ax_loss.plot([h["epoch"] for h in validated], [h["val_loss"] for h in validated], label="val loss")
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("loss")
    ax_loss.legend()
    scores = [k for k in ("val_f1", "val_precision", "val_recall", "val_map_50", "val_map") if any(k in h for h in history)]
    for key in scores:
        points = [(h["epoch"], h[key]) for h in history if key in h]
        ax_score.plot(*zip(*points), label=key[4:])
    if scores:
        ax_score.set_ylim(0, 1)
        protocol = "strict pixels, ODS threshold" if "val_f1" in scores else "COCO mAP (IoU 0.5, 0.5:0.95)"
        ax_score.set_title(f"validation, {protocol}", fontsize=9)
        ax_score.legend()
    ax_score.set_xlabel("epoch")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_balance(log: list[dict], path: str | Path) -> None:
    """The precision-recall flow: monitored P and R, PRF, positive-crop share, defect weight scale."""
    if not log:
        return
    plt = pyplot()
    steps = [e["step"] for e in log]
    fig, (ax_pr, ax_ctl) = plt.subplots(1, 2, figsize=(10, 3.8))
    for key in ("precision", "recall", "prf"):
        ax_pr.plot(steps, [e[key] for e in log], label=key.upper() if key == "prf" else key)
    ax_pr.axhline(0, color="grey", lw=0.5)
    ax_pr.set_title("monitoring subset, defect vs background, arg-max", fontsize=9)
    ax_pr.legend()
    ax_ctl.plot(steps, [e["positive_share"] for e in log], label="share of crops with defects")
    ax_ctl.set_ylabel("share")
    twin = ax_ctl.twinx()
    twin.plot(steps, [e["weight_scale"] for e in log], color="C3", label="defect weight scale")
    twin.set_ylabel("weight scale (log)")
    twin.set_yscale("log")
    ax_ctl.legend(loc="upper left", fontsize=8)
    twin.legend(loc="upper right", fontsize=8)
    for ax in (ax_pr, ax_ctl):
        ax.set_xlabel("training step")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_confusion(matrix, class_names: list[str], path: str | Path, title: str = "") -> None:
    """The confusion matrix of the arg-max class: rows (true class) normalised to shares, with
    the pixel counts behind each share in the row labels."""
    import numpy as np

    plt = pyplot()
    matrix = np.asarray(matrix, dtype=np.float64)
    rows = matrix.sum(axis=1, keepdims=True)
    shares = np.divide(matrix, rows, out=np.zeros_like(matrix), where=rows > 0)
    size = 1.2 + 0.7 * len(class_names)
    fig, ax = plt.subplots(figsize=(size + 1.5, size))
    image = ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(class_names)), class_names, rotation=45, ha="right")
    ax.set_yticks(range(len(class_names)), [f"{n} ({int(r):,} px)" for n, r in zip(class_names, rows[:, 0])])
    for i in range(len(class_names)):
        for j in range(len(class_names)):
            if shares[i, j] >= 0.005:
                ax.text(j, i, f"{shares[i, j]:.2f}", ha="center", va="center", fontsize=8,
                        color="white" if shares[i, j] > 0.5 else "black")
    ax.set_xlabel("predicted class (arg-max)")
    ax.set_ylabel("true class")
    ax.set_title(title or "share of each true class's pixels, pooled over images", fontsize=9)
    fig.colorbar(image, ax=ax, fraction=0.046)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
