"""Synthetic road and concrete images with crack masks, for tests and the demo.

A surface texture (asphalt aggregate or concrete with pores), cracks drawn as branching
random walks 1-6 px wide, and distractors that fool a darkness threshold: shadows (soft
blobs and hard pole shadows), oil stains, lane markings, straight joints / saw cuts, dark
aggregate and pores. Optionally potholes, patches and manhole covers as extra classes.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

import numpy as np
from scipy import ndimage
from skimage.draw import polygon as draw_polygon

from crackal.data.io import write_png
from crackal.errors import CrackalError, check_options, choose

Surface = Literal["asphalt", "concrete", "mixed"]
SURFACES: tuple[str, ...] = get_args(Surface)
CRACK_CLASSES = ["background", "crack"]
ALL_CLASSES = ["background", "crack", "pothole", "patch", "manhole"]


@dataclass
class SynthOptions:
    """What the generator draws; defaults give realistic, hard crack images."""

    surface: Surface = "mixed"
    extra_classes: bool = False
    crack_free_fraction: float = 0.15
    max_cracks: int = 3
    distractors: bool = True

    def __post_init__(self) -> None:
        choose(SURFACES, self.surface, "surface")
        check_options([(0 <= self.crack_free_fraction <= 1, "crack_free", f"is a share between 0 and 1, got {self.crack_free_fraction}")])


def _noise(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    """Smooth zero-mean noise of unit standard deviation at spatial scale ``sigma``.

    The mean is removed first: on an image not much larger than ``sigma`` the filtered field
    is nearly constant, and dividing its offset by its tiny spread gave huge values (black images).
    """
    field = ndimage.gaussian_filter(rng.standard_normal(shape), sigma, mode="wrap")
    field -= field.mean()
    return field / (field.std() + 1e-8)


def _texture(rng: np.random.Generator, shape: tuple[int, int], surface: str) -> np.ndarray:
    """Grey surface in [0, 1]: fractal mottling plus aggregate (asphalt) or pores (concrete)."""
    h, w = shape
    if surface == "asphalt":
        base = rng.uniform(0.33, 0.55)
        tex = base + 0.035 * _noise(rng, shape, 24) + 0.03 * _noise(rng, shape, 5)
        tex += 0.07 * _noise(rng, shape, 0.8)  # aggregate grain
        n_stones = int(h * w / rng.uniform(40, 90))
        ys, xs = rng.integers(0, h, n_stones), rng.integers(0, w, n_stones)
        stones = np.zeros(shape)
        stones[ys, xs] = rng.normal(0, 1.0, n_stones)
        tex += 0.6 * ndimage.gaussian_filter(stones, rng.uniform(0.8, 1.3))
    else:
        base = rng.uniform(0.55, 0.75)
        tex = base + 0.04 * _noise(rng, shape, 30) + 0.015 * _noise(rng, shape, 3)
        tex += 0.02 * _noise(rng, shape, 0.7)
        n_pores = int(h * w / rng.uniform(250, 600))
        pores = np.zeros(shape)
        pores[rng.integers(0, h, n_pores), rng.integers(0, w, n_pores)] = rng.uniform(0.5, 2.0, n_pores)
        tex -= 0.5 * ndimage.gaussian_filter(pores, rng.uniform(0.7, 1.2))
    return tex


def _walk(rng: np.random.Generator, shape, start, angle: float, steps: int, width: float, points: list, depth: int = 0) -> None:
    """Append ``(y, x, radius)`` points of one branching random walk."""
    h, w = shape
    y, x = start
    heading, curvature = angle, rng.uniform(0.08, 0.3)
    width_wave = _noise(rng, (steps + 8, 1), 6)[:, 0]
    for i in range(steps):
        angle += rng.normal(0, curvature) - 0.08 * (angle - heading)  # jagged, but keeps its course
        heading += rng.normal(0, 0.01)
        y, x = y + np.sin(angle), x + np.cos(angle)
        if not (-5 <= y < h + 5 and -5 <= x < w + 5):
            return
        taper = min(1.0, (i + 1) / 15, (steps - i) / 15)
        radius = max(0.5, width / 2 * (0.75 + 0.25 * width_wave[i]) * (0.4 + 0.6 * taper))
        points.append((y, x, radius))
        if depth < 2 and rng.random() < 0.012:
            side = rng.choice([-1, 1])
            _walk(rng, shape, (y, x), angle + side * rng.uniform(0.5, 1.2), int(steps * rng.uniform(0.2, 0.5)),
                  max(1.0, width * rng.uniform(0.4, 0.8)), points, depth + 1)


def crack_walks(rng: np.random.Generator, shape: tuple[int, int], count: int) -> list[list[tuple[float, float, float]]]:
    """``count`` cracks, each a list of ``(y, x, radius)`` points in drawing order (a prefix of
    the list is the crack at an earlier stage of its growth)."""
    h, w = shape
    walks = []
    for _ in range(count):
        start = (rng.uniform(0, h), rng.uniform(0, w))
        style = rng.random()
        if style < 0.45:  # longitudinal / transverse
            angle = rng.choice([0.0, np.pi / 2, np.pi, -np.pi / 2]) + rng.normal(0, 0.25)
        else:
            angle = rng.uniform(-np.pi, np.pi)
        steps = int(rng.uniform(0.5, 1.6) * max(h, w))
        width = rng.choice([rng.uniform(1.0, 2.5), rng.uniform(2.0, 6.0)], p=[0.6, 0.4])
        points: list = []
        _walk(rng, shape, start, angle, steps, width, points)
        walks.append(points)
    return walks


def render_cracks(points: list[tuple[float, float, float]], shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Crack mask and an anti-aliased darkness profile in [0, 1] from ``(y, x, radius)`` points."""
    h, w = shape
    if not points:
        return np.zeros(shape, bool), np.zeros(shape)
    centre = np.zeros(shape, bool)
    radius = np.zeros(shape)
    for y, x, r in points:
        iy, ix = int(round(y)), int(round(x))
        if 0 <= iy < h and 0 <= ix < w:
            centre[iy, ix] = True
            radius[iy, ix] = max(radius[iy, ix], r)
    if not centre.any():
        return np.zeros(shape, bool), np.zeros(shape)
    dist, (iy, ix) = ndimage.distance_transform_edt(~centre, return_indices=True)
    r = radius[iy, ix]
    mask = dist <= r
    profile = np.clip(r + 0.5 - dist, 0, 1)
    return mask, profile


def _crack_layer(rng: np.random.Generator, shape: tuple[int, int], count: int) -> tuple[np.ndarray, np.ndarray]:
    """Crack mask and an anti-aliased darkness profile in [0, 1]."""
    return render_cracks([p for walk in crack_walks(rng, shape, count) for p in walk], shape)


def _blob(rng: np.random.Generator, shape, centre, size: float, roughness: float = 0.35) -> np.ndarray:
    """An irregular filled blob (boolean) around ``centre``."""
    h, w = shape
    angles = np.linspace(0, 2 * np.pi, 24, endpoint=False)
    radii = size * (1 + roughness * ndimage.gaussian_filter1d(rng.standard_normal(24), 2, mode="wrap") * 2)
    ys = centre[0] + radii * np.sin(angles) * rng.uniform(0.6, 1.0)
    xs = centre[1] + radii * np.cos(angles)
    mask = np.zeros(shape, bool)
    rr, cc = draw_polygon(ys, xs, shape=(h, w))
    mask[rr, cc] = True
    return mask


def _line_distance(shape: tuple[int, int], point: tuple[float, float], angle: float) -> np.ndarray:
    """Distance of every pixel to the straight line through ``point`` at ``angle`` (radians)."""
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return np.abs((yy - point[0]) * np.cos(angle) - (xx - point[1]) * np.sin(angle))


def _soft(mask: np.ndarray, sigma: float) -> np.ndarray:
    return ndimage.gaussian_filter(mask.astype(np.float64), sigma)


def _add_defect_classes(rng, img: np.ndarray, label: np.ndarray) -> None:
    """Patches (3), potholes (2) and manhole covers (4), drawn before the cracks."""
    h, w = img.shape
    if rng.random() < 0.4:  # patch: a rectangle of fresher, darker, smoother asphalt
        ph, pw = int(rng.uniform(0.2, 0.5) * h), int(rng.uniform(0.2, 0.6) * w)
        top, left = rng.integers(0, h - ph), rng.integers(0, w - pw)
        region = np.zeros((h, w), bool)
        region[top : top + ph, left : left + pw] = True
        region = ndimage.rotate(region.astype(float), rng.uniform(-10, 10), reshape=False, order=0) > 0.5
        img[region] = img[region] * rng.uniform(0.6, 0.8) + 0.02 * _noise(rng, (h, w), 1.0)[region]
        edge = region ^ ndimage.binary_erosion(region, iterations=2)
        img[edge] *= 0.8
        label[region] = 3
    for _ in range(rng.poisson(0.5)):  # pothole: dark depression with a lit rim and loose stones
        centre = (rng.uniform(0.15, 0.85) * h, rng.uniform(0.15, 0.85) * w)
        blob = _blob(rng, (h, w), centre, rng.uniform(0.04, 0.1) * min(h, w))
        shade = _soft(blob, 2)
        img[:] = img * (1 - 0.55 * shade) + 0.06 * _noise(rng, (h, w), 1.2) * shade
        rim = ndimage.binary_dilation(blob, iterations=2) & ~blob
        img[rim] += 0.08
        label[blob] = 2
    if rng.random() < 0.3:  # manhole: a metal disc with a ring and a grid pattern
        r = rng.uniform(0.08, 0.14) * min(h, w)
        cy, cx = rng.uniform(r, h - r), rng.uniform(r, w - r)
        yy, xx = np.mgrid[:h, :w]
        dist = np.hypot(yy - cy, xx - cx)
        cover = dist <= r
        grid = (np.sin(yy / 2.5) * np.sin(xx / 2.5) > 0.3).astype(float)
        img[cover] = rng.uniform(0.25, 0.45) + 0.08 * grid[cover] + 0.02 * _noise(rng, (h, w), 1)[cover]
        img[(dist > r - 3) & cover] *= 0.6
        label[cover] = 4


def _distractors(rng, img: np.ndarray, surface: str) -> np.ndarray:
    """Things a darkness threshold mistakes for cracks; returns an illumination factor map."""
    h, w = img.shape
    if rng.random() < 0.5:  # lane marking: a bright worn stripe
        angle = rng.choice([0.0, np.pi / 2]) + rng.uniform(-0.3, 0.3)
        d = _line_distance((h, w), (rng.uniform(0, h), rng.uniform(0, w)), angle)
        worn = np.clip(1 - 0.6 * (_noise(rng, (h, w), 3) > 1.0), 0, 1)
        stripe = _soft(d < rng.uniform(4, 11), 1.0) * worn
        img += stripe * (rng.uniform(0.85, 0.95) - img) * rng.uniform(0.6, 0.9)
    if rng.random() < (0.6 if surface == "concrete" else 0.3):  # joint / saw cut: straight dark line
        angle = rng.choice([0.0, np.pi / 2]) + rng.normal(0, 0.02)
        d = _line_distance((h, w), (rng.uniform(0.15, 0.85) * h, rng.uniform(0.15, 0.85) * w), angle)
        img *= 1 - rng.uniform(0.3, 0.55) * _soft(d < rng.uniform(0.75, 2.0), 0.7)
    for _ in range(rng.poisson(1.2)):  # oil / water stain
        blob = _blob(rng, (h, w), (rng.uniform(0, h), rng.uniform(0, w)), rng.uniform(0.05, 0.2) * min(h, w), 0.5)
        img *= 1 - rng.uniform(0.15, 0.4) * _soft(blob, rng.uniform(2, 6))
    for _ in range(rng.poisson(2.0)):  # dark specks and small pits
        img *= 1 - rng.uniform(0.3, 0.6) * _soft(_blob(rng, (h, w), (rng.uniform(0, h), rng.uniform(0, w)), rng.uniform(1.5, 4)), 0.8)
    light = np.ones((h, w))
    for _ in range(rng.poisson(0.8)):  # soft shadow of a tree or vehicle
        blob = _blob(rng, (h, w), (rng.uniform(0, h), rng.uniform(0, w)), rng.uniform(0.15, 0.4) * min(h, w), 0.6)
        light *= 1 - rng.uniform(0.25, 0.5) * _soft(blob, rng.uniform(3, 10))
    if rng.random() < 0.3:  # hard shadow of a pole: a long straight dark band
        d = _line_distance((h, w), (rng.uniform(0, h), rng.uniform(0, w)), rng.uniform(0, np.pi))
        light *= 1 - rng.uniform(0.3, 0.5) * _soft(d < rng.uniform(2.5, 7), 1.5)
    return light


def synth_sample(
    rng: np.random.Generator, size: tuple[int, int] = (256, 256), options: SynthOptions | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """One synthetic image ``(H, W, 3) uint8`` and its class mask ``(H, W) uint8``.

    >>> image, mask = synth_sample(np.random.default_rng(0), (64, 96))
    >>> image.shape, mask.shape, mask.dtype
    ((64, 96, 3), (64, 96), dtype('uint8'))
    """
    options = options or SynthOptions()
    surface = options.surface if options.surface != "mixed" else rng.choice(["asphalt", "concrete"], p=[0.65, 0.35])
    img = _texture(rng, size, surface)
    label = np.zeros(size, np.uint8)
    if options.extra_classes:
        _add_defect_classes(rng, img, label)
    light = _distractors(rng, img, surface) if options.distractors else np.ones(size)
    if rng.random() >= options.crack_free_fraction:
        mask, profile = _crack_layer(rng, size, int(rng.integers(1, options.max_cracks + 1)))
        contrast = rng.uniform(0.35, 0.75)  # some cracks are faint
        inner = np.clip(0.3 * _noise(rng, size, 1.5), -0.3, 0.3)
        img *= 1 - contrast * profile * (1 + inner)
        label[mask] = 1
    return photograph(rng, img * light), label


def photograph(rng: np.random.Generator, img: np.ndarray) -> np.ndarray:
    """What a camera adds to a grey surface in [0, 1]: a brightness gradient, blur, sensor
    noise and a colour tint; ``(H, W, 3) uint8``."""
    size = img.shape
    gradient = 1 + rng.uniform(-0.15, 0.15) * (np.mgrid[: size[0], : size[1]][1] / size[1] - 0.5)
    img = img * gradient
    img = ndimage.gaussian_filter(img, rng.uniform(0.3, 0.8)) + rng.uniform(0.01, 0.03) * rng.standard_normal(size)
    tint = np.array([1.0, 1.0, 1.0]) + rng.normal(0, 0.03, 3)
    return np.clip(img[:, :, None] * tint * 255, 0, 255).astype(np.uint8)


def parse_size(text: str | int | tuple[int, int]) -> tuple[int, int]:
    """``256`` or ``"320x480"`` (height x width) -> ``(H, W)``."""
    if isinstance(text, tuple):
        return text
    try:
        parts = [int(p) for p in str(text).lower().split("x")]
    except ValueError:
        parts = []
    if len(parts) == 1:
        parts = parts * 2
    if len(parts) != 2 or min(parts) < 32:
        raise CrackalError(f"bad size {text!r}; give HEIGHTxWIDTH like 320x480 or one number like 256 (at least 32)")
    return parts[0], parts[1]


def write_synthetic_dataset(
    out: str | Path,
    count: int = 60,
    size: int | str | tuple[int, int] = 256,
    seed: int = 0,
    options: SynthOptions | None = None,
    prefix: str = "synth",
) -> Path:
    """Write ``out/images/PREFIX_NNN.png``, ``out/masks/PREFIX_NNN.png`` (class indices, 0/255 when
    binary) and ``classes.json``; two sets meant to be used together (a pool and a held-out set)
    need different ``prefix`` es, as crackal knows images by name."""
    check_options([(count >= 1, "count", f"must be at least 1, got {count}"),
                   (re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}", prefix) is not None, "prefix",
                    f"must be letters, digits, _ or - (a file name part), got {prefix!r}")])
    options = options or SynthOptions()
    shape = parse_size(size)
    out = Path(out)
    rng = np.random.default_rng(seed)
    names = ALL_CLASSES if options.extra_classes else CRACK_CLASSES
    digits = max(3, len(str(count - 1)))
    for i in range(count):
        image, mask = synth_sample(rng, shape, options)
        write_png(out / "images" / f"{prefix}_{i:0{digits}d}.png", image)
        write_png(out / "masks" / f"{prefix}_{i:0{digits}d}.png", mask * 255 if len(names) == 2 else mask)
    (out / "classes.json").write_text(json.dumps(names))
    return out
