"""Options of an active-learning project, stored in its database."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

from crackal.acquisition.heuristics import HEURISTICS
from crackal.acquisition.reduce import REDUCTIONS
from crackal.acquisition.score import METHODS
from crackal.errors import CrackalError
from crackal.models import check_downscale

TASKS = ("segmentation", "detection")
DETECTION_STRATEGIES = ("disagreement", "random")


@dataclass
class ALConfig:
    """What the loop does each round, and when it stops.

    Training per round is from scratch with a fixed number of crops (``epochs`` x
    ``samples_per_epoch``) whatever the size of the labelled set, so rounds cost the same.
    ``task="detection"`` trains a RetinaNet (``backbone``, ``image_size``; ``dropout`` is its
    head dropout) for ``epochs`` passes over the labelled images and scores the pool by the
    ``disagreement`` of head-dropout samples or of an ensemble (see
    ``crackal.uncertainty.detection``).
    """

    task: str = "segmentation"
    backbone: str = "resnet18"
    image_size: int = 0

    strategy: str = "bald"
    reduction: str = "topk"
    method: str = "mc_dropout"
    iterations: int = 20
    ensemble_size: int = 3
    selection: str = "top"  # top | stochastic
    temperature: float = 1.0
    batch: int = 10
    initial: int = 10
    cold_start: str = "random"  # random | coreset
    seed: int = 0
    class_names: list[str] = field(default_factory=lambda: ["background", "crack"])
    simulation: bool = False
    # training each round
    arch: str = "unet"
    base_channels: int = 16
    depth: int = 4
    dropout: float = 0.2
    epochs: int = 12
    samples_per_epoch: int = 64
    batch_size: int = 8
    crop_size: int = 256
    downscale: int = 1  # the network sees images shrunk this many times (big images, large defects)
    lr: float = 3e-3
    loss: str = "ce+dice"
    class_weighting: str = "sqrt_inverse"
    # stopping
    budget: int | None = None
    patience: int | None = 3  # None: no plateau stopping (simulations compare fixed rounds)
    min_delta: float = 0.005
    min_uncertainty: float | None = None
    # cost model for reports
    cost_per_image: float = 0.5
    seconds_per_image: float = 30.0

    def __post_init__(self) -> None:
        check_downscale(self.downscale, "--downscale")
        checks = [
            (self.task in TASKS, f"unknown task {self.task!r}; choose segmentation or detection"),
            (self.task == "detection" or self.strategy in HEURISTICS, f"unknown strategy {self.strategy!r}; choose one of {', '.join(HEURISTICS)}"),
            (self.task != "detection" or self.strategy in DETECTION_STRATEGIES,
             f"a detector is scored by {' or '.join(DETECTION_STRATEGIES)}, not {self.strategy!r}"),
            (self.task != "detection" or (self.method != "mc_batchnorm" and self.cold_start == "random"),
             "a detector (GroupNorm, no BatchNorm) takes --method mc_dropout or ensemble and --cold-start random"),
            (self.reduction in REDUCTIONS, f"unknown reduction {self.reduction!r}; choose one of {', '.join(REDUCTIONS)}"),
            (self.method in METHODS, f"unknown uncertainty method {self.method!r}; choose one of {', '.join(METHODS)}"),
            (self.selection in ("top", "stochastic"), f"unknown selection {self.selection!r}; choose top or stochastic"),
            (self.cold_start in ("random", "coreset"), f"unknown cold start {self.cold_start!r}; choose random or coreset"),
            (self.batch >= 1, f"--step (images per round) must be at least 1, got {self.batch}"),
            (self.initial >= 1, f"--initial must be at least 1, got {self.initial}"),
            (self.iterations >= 2, f"--iterations must be at least 2, got {self.iterations}"),
            (self.task != "detection" or self.downscale == 1, "--downscale is for segmentation; a detector takes --image-size"),
            (self.ensemble_size >= 2, f"--ensemble-size must be at least 2, got {self.ensemble_size}"),
        ]
        for ok, message in checks:
            if not ok:
                raise CrackalError(message)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "ALConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})
