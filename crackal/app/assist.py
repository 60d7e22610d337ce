"""The mask editor's labelling assists, without HTTP: crack tracing and click-to-fill.

Tracing joins the points a labeller clicks along a crack by the cheapest 8-connected path
(geometric: a diagonal step costs sqrt(2) times a straight one) through a cost map that is low
on cracks. The cost map comes from the latest round's defect probability map when the project
has a trained model (the review viewer's ``probability`` layer, cached per round), else from an
image ridge filter for dark thin lines (Sato, ``black_ridges=True``). Each segment is solved in a
window around its two points plus a margin, so a 4000 x 3000 photo costs no more than a small
image for nearby points.

Fill floods the region of similar values around a click (``skimage.segmentation.flood``): on the
probability map with a model, else on the smoothed grey image, and closes the holes inside it
(a pothole's texture). A region larger than ``MAX_FILL_FRACTION`` of the image is refused with
an ``AssistError`` rather than filled: a click on the road surface would otherwise paint most of
the frame.

>>> import numpy as np
>>> grey = np.full((40, 60), 200, np.uint8); grey[20, 5:55] = 40
>>> source = assist_source(grey)
>>> path = trace(source, [(5.5, 20.5), (54.5, 20.5)])
>>> {y for _, y in path}
{20}
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from crackal.errors import CrackalError

MAX_POINTS = 500  # points in one trace request
MARGIN = 24  # px around a segment's two points (and a quarter of its length) searched for its path
SNAP = 2  # a clicked point moves to the cheapest pixel within this many px
EPS = 0.02  # the cost of a certain crack pixel (1 for a certain background pixel)
RIDGE_SIGMAS = (1.0, 2.0, 3.0)  # px: the line widths the ridge filter answers to (about 2-8 px)
RIDGE_PAD = 10  # px of context around a window for the ridge filter
FULL_PIXELS = 2**20  # images up to this size get their whole ridge cost map at once
MAX_FILL_FRACTION = 0.25
EDGE = 3  # px a flooded region may grow to reach the middle of its edge
DEFAULT_TOLERANCE = 0.12  # of the value range (probability 0-1, grey 0-255)

Source = Literal["probability", "ridge"]


class AssistError(CrackalError):
    """A request the assist cannot answer as asked (a fill that would flood the image)."""


@dataclass
class AssistSource:
    """What the assists of one image work on: ``values`` (uint8 ``(H, W)``: the probability map
    x 255, or the smoothed grey image, for fill) and the cost map (``cost``: float32, ``EPS`` on a
    sure crack to 1). With a probability map, or an image of at most ``FULL_PIXELS``, the whole
    cost map is computed once (``full``); the ridge cost of a larger image is computed for each
    window asked (``grey`` kept for it): the filter takes ~14 s on a 4000 x 3000 frame on two
    CPU cores, a window around two clicks a fraction of a second."""

    values: np.ndarray
    source: Source
    full: np.ndarray | None = None
    grey: np.ndarray | None = None

    @property
    def shape(self) -> tuple[int, int]:
        """``(H, W)``."""
        return self.values.shape[0], self.values.shape[1]

    @property
    def nbytes(self) -> int:
        """The memory its arrays take."""
        return int(sum(a.nbytes for a in (self.values, self.full, self.grey) if a is not None))

    def cost(self, x0: int = 0, y0: int = 0, x1: int | None = None, y1: int | None = None) -> np.ndarray:
        """The cost map of the window ``[y0:y1, x0:x1]`` (the whole image by default)."""
        height, width = self.shape
        x1, y1 = width if x1 is None else x1, height if y1 is None else y1
        if self.full is not None:
            return self.full[y0:y1, x0:x1]
        assert self.grey is not None
        top, left = max(0, y0 - RIDGE_PAD), max(0, x0 - RIDGE_PAD)
        ridge = ridge_map(self.grey[top:min(height, y1 + RIDGE_PAD), left:min(width, x1 + RIDGE_PAD)])
        return cost_of(ridge[y0 - top:y1 - top, x0 - left:x1 - left])


def grey_of(image: np.ndarray) -> np.ndarray:
    """The uint8 grey image of an ``(H, W)`` or ``(H, W, 3)`` image."""
    if image.ndim == 3:
        image = image[..., :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    return np.clip(np.asarray(image, np.float32), 0, 255).round().astype(np.uint8)


def ridge_map(grey: np.ndarray, sigmas: Sequence[float] = RIDGE_SIGMAS) -> np.ndarray:
    """How much each pixel looks like a dark thin line, 0..1 (float32): the Sato tubeness of the
    grey image, divided by its 99.5th percentile (at least a floor that keeps the noise of a
    crack-free image below ~0.3)."""
    from skimage.filters import sato

    response = sato(grey.astype(np.float32) / 255.0, sigmas=list(sigmas), black_ridges=True, mode="reflect")
    response = np.asarray(response, np.float32)
    scale = max(float(np.percentile(response, 99.5)), 0.02)
    return np.clip(response / scale, 0.0, 1.0)


def cost_of(likelihood: np.ndarray) -> np.ndarray:
    """The step cost of a crack likelihood map (0..1): ``EPS`` on a sure crack pixel, 1 on sure
    background, quadratic in between (a path prefers a long detour along the crack to a short
    cut across the surface)."""
    return (EPS + (1.0 - EPS) * (1.0 - np.clip(likelihood, 0.0, 1.0)) ** 2).astype(np.float32)


def assist_source(image: np.ndarray, probability: np.ndarray | None = None) -> AssistSource:
    """The cost map and fill values of an image: from ``probability`` (uint8 0-255 or float
    0-1, ``(H, W)``: the model's defect probability) when given, else from the ridge filter of
    the image (see ``AssistSource``)."""
    from scipy import ndimage

    if probability is not None:
        prob = np.asarray(probability)
        prob = prob.astype(np.float32) / 255.0 if prob.dtype == np.uint8 else np.clip(prob.astype(np.float32), 0, 1)
        return AssistSource((prob * 255).round().astype(np.uint8), "probability", full=cost_of(prob))
    grey = grey_of(image)
    smooth = ndimage.gaussian_filter(grey.astype(np.float32), 1.0).round().astype(np.uint8)
    if grey.size <= FULL_PIXELS:
        return AssistSource(smooth, "ridge", full=cost_of(ridge_map(grey)))
    return AssistSource(smooth, "ridge", grey=grey)


def _source(cost: np.ndarray | AssistSource) -> AssistSource:
    if isinstance(cost, AssistSource):
        return cost
    cost = np.asarray(cost, np.float32)
    return AssistSource(np.zeros(cost.shape, np.uint8), "probability", full=cost)


def _snap(source: AssistSource, x: int, y: int, radius: int) -> tuple[int, int]:
    """The cheapest pixel within ``radius`` of (x, y) (the nearest among equals)."""
    if radius <= 0:
        return x, y
    height, width = source.shape
    y0, y1, x0, x1 = max(0, y - radius), min(height, y + radius + 1), max(0, x - radius), min(width, x + radius + 1)
    window = source.cost(x0, y0, x1, y1)
    yy, xx = np.mgrid[y0:y1, x0:x1]
    distance = (yy - y) ** 2 + (xx - x) ** 2
    order = np.lexsort((distance.ravel(), window.ravel()))
    best = [i for i in order if distance.ravel()[i] <= radius * radius][0]
    return int(xx.ravel()[best]), int(yy.ravel()[best])


def _segment(source: AssistSource, a: tuple[int, int], b: tuple[int, int], margin: int) -> list[tuple[int, int]]:
    """The cheapest 8-connected path from pixel a to pixel b (both ``(x, y)``, included), searched in
    their bounding box grown by ``margin`` and a quarter of their distance."""
    from skimage.graph import route_through_array

    if a == b:
        return [a]
    height, width = source.shape
    grow = margin + int(0.25 * max(abs(a[0] - b[0]), abs(a[1] - b[1])))
    x0, x1 = max(0, min(a[0], b[0]) - grow), min(width, max(a[0], b[0]) + grow + 1)
    y0, y1 = max(0, min(a[1], b[1]) - grow), min(height, max(a[1], b[1]) + grow + 1)
    indices, _ = route_through_array(source.cost(x0, y0, x1, y1), (a[1] - y0, a[0] - x0), (b[1] - y0, b[0] - x0),
                                     fully_connected=True, geometric=True)
    return [(int(c) + x0, int(r) + y0) for r, c in indices]


def _pixel(point: Sequence[float], shape: tuple[int, ...]) -> tuple[int, int]:
    x, y = float(point[0]), float(point[1])
    if not (np.isfinite(x) and np.isfinite(y) and 0 <= x < shape[1] and 0 <= y < shape[0]):
        raise CrackalError(f"point ({x:g}, {y:g}) is outside the {shape[1]}x{shape[0]} image")
    return int(x), int(y)


def trace(cost: np.ndarray | AssistSource, points: Sequence[Sequence[float]], margin: int = MARGIN,
          snap: int = SNAP) -> list[tuple[int, int]]:
    """The path through ``points`` (image coordinates ``(x, y)``: pixel ``(i, j)`` covers
    ``[i, i + 1) x [j, j + 1)``), each consecutive pair joined by its cheapest path in ``cost``
    (an ``(H, W)`` cost map, or an image's ``AssistSource``);
    returns the pixels ``(x, y)`` of the path in order, each once per visit. Each point first
    snaps to the cheapest pixel within ``snap`` px (a click beside a crack lands on it)."""
    if len(points) == 0:
        return []
    if len(points) > MAX_POINTS:
        raise CrackalError(f"{len(points)} points: at most {MAX_POINTS} in one trace")
    source = _source(cost)
    pixels = [_snap(source, *_pixel(p, source.shape), snap) for p in points]
    path = [pixels[0]]
    for a, b in zip(pixels, pixels[1:]):
        path.extend(_segment(source, a, b, margin)[1:])
    return path


def fill(values: np.ndarray, x: float, y: float, tolerance: float = DEFAULT_TOLERANCE,
         max_fraction: float = MAX_FILL_FRACTION) -> np.ndarray:
    """The region around the pixel at ``(x, y)`` whose ``values`` (uint8) differ from the
    clicked pixel's by at most ``tolerance`` of the range (0..1), 8-connected, grown by up to
    ``EDGE`` px to its edge (the pixels nearer the region's mean value than the surface's
    ``EDGE`` px away: a smoothed edge is crossed half-way) and with its holes closed; a boolean
    ``(H, W)`` mask. ``AssistError`` when the region would cover more than ``max_fraction`` of
    the image (a click on the background): nothing is filled.

    >>> values = np.zeros((20, 20), np.uint8); values[5:10, 5:10] = 200
    >>> int(fill(values, 7, 7).sum())
    25
    """
    from scipy import ndimage
    from skimage.segmentation import flood

    if not 0 <= tolerance <= 1:
        raise CrackalError(f"tolerance must be between 0 and 1 (a fraction of the value range), got {tolerance:g}")
    col, row = _pixel((x, y), values.shape)
    region = flood(values, (row, col), connectivity=2, tolerance=round(255 * tolerance))
    share = float(region.mean())
    if share <= max_fraction:
        x0, y0, x1, y1 = bounding_box(region) or (col, row, col + 1, row + 1)
        box = (slice(max(0, y0 - EDGE), y1 + EDGE), slice(max(0, x0 - EDGE), x1 + EDGE))
        inside, near = region[box], values[box].astype(np.float32)
        grown = ndimage.binary_dilation(inside, iterations=EDGE)
        ring, outer = grown & ~inside, grown & ~ndimage.binary_dilation(inside, iterations=EDGE - 1)
        if outer.any():  # grow to the edge: ring pixels nearer the region's mean than the surface's around it
            middle = (near[inside].mean() + near[outer].mean()) / 2
            inside |= ring & ((near - middle) * np.sign(near[inside].mean() - middle) > 0)
        region[box] = ndimage.binary_fill_holes(inside)
        share = float(region.mean())
    if share > max_fraction:
        raise AssistError(f"the region at ({col}, {row}) covers {100 * share:.0f} % of the image, more than the "
                          f"{100 * max_fraction:.0f} % a fill may take: click inside the defect, or lower the tolerance "
                          f"(now {tolerance:g}); nothing filled")
    return region


def bounding_box(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """``(x0, y0, x1, y1)`` (end exclusive) of the true pixels, or None."""
    rows, cols = np.nonzero(mask.any(1))[0], np.nonzero(mask.any(0))[0]
    if not len(rows):
        return None
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1
