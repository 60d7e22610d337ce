"""Command-line options shared by the training commands (segmentation and detection)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

Val = Annotated[float, typer.Option(help="Validation share (<1) or count.")]
Test = Annotated[float, typer.Option(help="Test share (<1) or count.")]
SplitFile = Annotated[Optional[Path], typer.Option(help="Use this split.json instead of a new seeded split.")]
Seed = Annotated[int, typer.Option()]
Weights = Annotated[Optional[Path], typer.Option(help="Start from a local weights file.")]
Device = Annotated[str, typer.Option(help="auto, cpu or cuda.")]
Threads = Annotated[Optional[int], typer.Option(help="CPU threads for PyTorch.")]
TimeLimit = Annotated[Optional[float], typer.Option(help="Stop after this many minutes (best checkpoint kept).")]
Downscale = Annotated[int, typer.Option(help="Run the network on images shrunk 2, 4 or 8 times (more context for large defects in big images; raise --crop-size with it); 1 = full resolution.")]
Resume = Annotated[bool, typer.Option(help="Continue the run in --out from its last checkpoint.")]
