"""Synthetic bi-temporal pairs: one surface photographed at two inspections.

Between the dates the light changes (other shadows, exposure, colour), the second photo is
slightly misregistered (a sub-pixel to ~1.5 px shift), and the cracks evolve: some stay as
they were, some grow (the later photo shows a longer walk), new ones appear, and some are
sealed (covered by a band of dark bitumen). The change mask marks the new crack pixels and
the sealant bands, in the frame of the later photo; cracks that did not change are not
change, nor are shadows.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

from crackal.data.bitemporal import write_bitemporal
from crackal.data.synth import SURFACES, Surface, _distractors, _noise, _soft, _texture, crack_walks, parse_size, photograph, render_cracks
from crackal.errors import check_options, choose

FATES = ("static", "grown", "appeared", "sealed")


@dataclass
class ChangeOptions:
    """What changes between the dates. ``change_probability``: share of pairs with any change
    (the others have only static cracks, or none); ``fate_weights``: relative frequency of a
    changed crack growing, appearing or being sealed."""

    surface: Surface = "mixed"
    change_probability: float = 0.5
    max_cracks: int = 3
    max_changes: int = 2
    fate_weights: tuple[float, float, float] = (0.4, 0.4, 0.2)
    max_shift: float = 1.5
    distractors: bool = True

    def __post_init__(self) -> None:
        choose(SURFACES, self.surface, "surface")
        check_options([(0 <= self.change_probability <= 1, "change_probability",
                        f"is a share between 0 and 1, got {self.change_probability}")])


def _fates(rng: np.random.Generator, count: int, options: ChangeOptions) -> list[str]:
    fates = ["static"] * count
    if count and rng.random() < options.change_probability:
        changed = rng.choice(count, size=min(count, int(rng.integers(1, options.max_changes + 1))), replace=False)
        weights = np.asarray(options.fate_weights, np.float64)
        for i in changed:
            fates[i] = str(rng.choice(FATES[1:], p=weights / weights.sum()))
    return fates


def synth_change_pair(
    rng: np.random.Generator, size: tuple[int, int] = (256, 256), options: ChangeOptions | None = None
) -> dict:
    """``{"image_a", "image_b": (H, W, 3) uint8, "mask": (H, W) uint8 change 0/1,
    "crack_a", "crack_b": (H, W) bool, "fates": [...]}``.

    >>> pair = synth_change_pair(np.random.default_rng(0), (64, 64))
    >>> pair["image_a"].shape, pair["image_b"].shape, pair["mask"].shape
    ((64, 64, 3), (64, 64, 3), (64, 64))
    """
    options = options or ChangeOptions()
    surface = options.surface if options.surface != "mixed" else str(rng.choice(["asphalt", "concrete"], p=[0.65, 0.35]))
    base = _texture(rng, size, surface)
    light_a = _distractors(rng, base, surface) if options.distractors else np.ones(size)  # stains, markings: both dates
    light_b = _distractors(rng, base.copy(), surface) if options.distractors else np.ones(size)  # other shadows only
    walks = crack_walks(rng, size, int(rng.integers(0, options.max_cracks + 1)))
    fates = _fates(rng, len(walks), options)
    points_a, points_b, sealed = [], [], []
    for walk, fate in zip(walks, fates):
        if fate == "grown":
            points_a += walk[: max(1, int(len(walk) * rng.uniform(0.3, 0.7)))]
            points_b += walk
        elif fate == "appeared":
            points_b += walk
        elif fate == "sealed":
            points_a += walk
            sealed += walk
        else:
            points_a += walk
            points_b += walk
    crack_a, profile_a = render_cracks(points_a, size)
    crack_b, profile_b = render_cracks(points_b, size)
    seal = ndimage.binary_dilation(render_cracks(sealed, size)[0], iterations=int(rng.integers(3, 6))) if sealed else np.zeros(size, bool)
    contrast = rng.uniform(0.4, 0.75)
    inner = np.clip(0.3 * _noise(rng, size, 1.5), -0.3, 0.3)
    img_a = base * (1 - contrast * profile_a * (1 + inner))
    img_b = base * (1 - contrast * profile_b * (1 + inner))
    if seal.any():  # bitumen: dark, smooth, soft-edged
        tone = rng.uniform(0.12, 0.25) + 0.01 * _noise(rng, size, 2)
        cover = _soft(seal, 0.8)
        img_b = img_b * (1 - cover) + tone * cover
    img_b = img_b * light_b * rng.uniform(0.8, 1.2)  # illumination of the second inspection
    shift = rng.uniform(-options.max_shift, options.max_shift, 2)
    img_b = ndimage.shift(img_b, shift, order=1, mode="reflect")
    change = (crack_b & ~crack_a) | seal
    change = ndimage.shift(change.astype(np.uint8), np.round(shift), order=0, mode="nearest")
    return {
        "image_a": photograph(rng, img_a * light_a),
        "image_b": photograph(rng, img_b),
        "mask": change.astype(np.uint8),
        "crack_a": crack_a,
        "crack_b": ndimage.shift(crack_b.astype(np.uint8), np.round(shift), order=0, mode="nearest") > 0,
        "fates": fates,
    }


def write_change_dataset(
    out: str | Path,
    count: int = 40,
    size: int | str | tuple[int, int] = 256,
    seed: int = 0,
    options: ChangeOptions | None = None,
) -> Path:
    """Write ``count`` pairs to ``out/A``, ``out/B`` and ``out/masks`` (0/255)."""
    check_options([(count >= 1, "count", f"must be at least 1, got {count}")])
    options = options or ChangeOptions()
    shape, rng = parse_size(size), np.random.default_rng(seed)
    digits = max(3, len(str(count - 1)))
    for i in range(count):
        pair = synth_change_pair(rng, shape, options)
        write_bitemporal(out, f"pair_{i:0{digits}d}", pair["image_a"], pair["image_b"], pair["mask"])
    return Path(out)
