"""Progress: bars on a terminal, a few plain lines in a log, nothing when quiet."""

import io

from crackal.cli import main
from crackal.progress import Progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_log_gets_plain_lines_not_carriage_returns():
    log = io.StringIO()
    progress = Progress(stream=log, interval=0.0)
    assert list(progress.bar(range(5), desc="scoring pool", unit="images")) == list(range(5))
    progress.line("round 1: done")
    lines = log.getvalue().splitlines()
    assert "\r" not in log.getvalue() and lines[-2].startswith("scoring pool: 5/5 images") and lines[-1] == "round 1: done"
    assert len(lines) == 6  # one per item (interval 0), and the news line


def test_a_slow_interval_prints_only_the_end():
    log = io.StringIO()
    list(Progress(stream=log, interval=3600).bar(range(100), desc="evaluating", unit="images"))
    assert log.getvalue().splitlines() == [log.getvalue().splitlines()[0]] and "100/100 images" in log.getvalue()


def test_quiet_and_brief():
    log = io.StringIO()
    quiet = Progress(enabled=False, stream=log)
    assert list(quiet.bar(range(3))) == [0, 1, 2]
    quiet.line("x")
    brief = Progress(stream=log, interval=0.0).brief()
    assert list(brief.bar(range(3), detail=True)) == [0, 1, 2]  # an inner loop: no bar
    brief.line("epoch 1/3: ...", detail=True)
    assert log.getvalue() == ""


def test_a_terminal_gets_a_bar():
    screen = Terminal()
    list(Progress(stream=screen).bar(range(3), desc="training", unit="epochs"))
    assert "training:" in screen.getvalue() and "/3 [" in screen.getvalue()  # a tqdm bar (cleared when done)


def test_quiet_commands_print_only_their_result(tmp_path, capsys):
    assert main(["synth", str(tmp_path / "d"), "--count", "6", "--size", "64"]) == 0
    capsys.readouterr()
    assert main(["train", str(tmp_path / "d"), "--out", str(tmp_path / "r"), "--epochs", "2", "--arch", "unet", "--base-channels", "4",
                 "--depth", "2", "--crop-size", "64", "--val", "1", "--test", "1", "--quiet"]) == 0
    out = capsys.readouterr()
    assert out.err == "" and out.out.startswith("best epoch")
    assert main(["train", str(tmp_path / "d"), "--out", str(tmp_path / "r2"), "--epochs", "2", "--arch", "unet", "--base-channels", "4",
                 "--depth", "2", "--crop-size", "64", "--val", "1", "--test", "1"]) == 0
    err = capsys.readouterr().err
    assert "epoch 1/2: train_loss" in err and "epoch 2/2" in err and "\r" not in err


def test_training_is_the_same_on_a_terminal_in_a_log_and_quiet(tiny_dataset, tmp_path):
    from crackal.data.dataset import SegmentationDataset
    from crackal.data.layout import find_pairs
    from crackal.runs.config import TrainConfig
    from crackal.training.trainer import train

    data = SegmentationDataset(find_pairs(tiny_dataset), 2)
    config = TrainConfig(arch="unet", epochs=2, base_channels=4, depth=2, crop_size=32, batch_size=2, device="cpu")
    runs = [train(data, None, config, tmp_path / name, progress=progress).history
            for name, progress in (("tty", Progress(stream=Terminal())), ("log", Progress(stream=io.StringIO())),
                                   ("quiet", False))]
    losses = [[h["train_loss"] for h in history] for history in runs]
    assert losses[0] == losses[1] == losses[2]
