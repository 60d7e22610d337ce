"""Training-curve plot of a run (loss and validation scores per epoch)."""

from __future__ import annotations

from pathlib import Path


def plot_history(history: list[dict], path: str | Path) -> None:
    """Two panels: train/val loss, and validation precision/recall/F1 (strict, ODS)."""
    if not history:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [h["epoch"] for h in history]
    fig, (ax_loss, ax_score) = plt.subplots(1, 2, figsize=(10, 3.8))
    ax_loss.plot(epochs, [h["train_loss"] for h in history], label="train loss")
    if "val_loss" in history[0]:
        ax_loss.plot(epochs, [h["val_loss"] for h in history], label="val loss")
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("loss")
    ax_loss.legend()
    if "val_f1" in history[0]:
        for key in ("val_f1", "val_precision", "val_recall"):
            ax_score.plot(epochs, [h[key] for h in history], label=key[4:])
        ax_score.set_ylim(0, 1)
        ax_score.set_title("validation, strict pixels, ODS threshold", fontsize=9)
        ax_score.legend()
    ax_score.set_xlabel("epoch")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
