"""Defect instances from a class mask: what an inspection report lists, one row per defect.

Cracks (every class whose name holds ``crack``) become instances: the mask's pieces whose
pixels lie within ``gap_px`` of each other are one crack (a crack a thresholded prediction
breaks into fragments is counted once). Per crack:

- **length**: the centre line (skeleton, spurs shorter than 6 px or twice the crack's radius
  at their branch point pruned), traced into paths between free ends and branch points, each
  measured along chords between every 8th pixel (8-connected steps alone, 1 or sqrt 2 px each, read an
  inclined crack up to 8 % long) and extended at every free end to the crack's
  outline by the distance transform there (so a straight crack measures its full extent);
  the bridged gaps themselves are not counted;
- **width** along the centre line from the distance transform ``d`` of the crack mask:
  ``2 d - 1`` at each centre-line pixel, plus 1 where the ridge of ``d`` is two pixels thick
  (an even width): exact for cracks along the image axes, 0.3-0.6 px narrow for inclined ones;
  its mean, median, 95th percentile and maximum, and the area over the length
  (``width_area_px``, the mean width without that bias, junctions included);
- **orientation**: the principal direction of the centre-line pixels, in degrees counter-
  clockwise from the image's x axis (0 = left-right, 90 = up-down);
- **type**: ``block`` or ``alligator`` for a network (at least ``network_min_loops`` closed
  cells of ``min_cell_px`` or more in the centre line, or ``network_min_branch_points``
  branch points that are also ``network_min_branch_density`` per 100 x 100 px of the
  crack's convex hull: cells that do not close), by the mean cell size: the convex hull's
  area over the number of cells (the loops, or half the branch points when cells do not
  close); cells under ``alligator_max_cell_m2`` (0.1 m^2, about
  0.3 x 0.3 m, the fatigue-cracking pieces of the LTPP distress manual; without a ground
  sampling distance ``alligator_max_cell_px``) are alligator, larger ones block cracking.
  Otherwise ``longitudinal`` within ``axis_tolerance_deg`` of the direction of travel
  (``travel_direction_deg``, default 90: up the image, as a survey camera looks down a
  road), ``transverse`` within that tolerance of its perpendicular, else ``diagonal``. A
  class named ``alligator...`` is always alligator;
- **severity** from the width in millimetres (``width x GSD``; unknown without a GSD): the
  ``severity`` bands, by default the LTPP manual's for longitudinal and transverse cracking
  (mean width <= 6 mm low, <= 19 mm moderate, above high); ``bridge``: the AASHTO bridge
  element manual's for reinforced concrete (<= 0.3 mm low, <= 1.3 mm moderate, above high);
- the bounding box and the centre line as polylines through every ``polyline_step_px``-th
  centre-line pixel and the ends of each path.

Other classes (potholes, patches, manholes ...) become regions: the outline of each piece as
a polygon, its area and bounding box.

Coordinates are continuous pixel coordinates: ``x`` = column, ``y`` = row, the image's top-left
corner at (0, 0), a pixel's centre at +0.5, boxes ``[x0, y0, x1, y1]``.

``defects_by_blocks`` does the same on a mask read block by block (a raster of any size):
pieces of a defect that cross block borders are joined (union-find over the blocks' halos)
and the defect is measured once, from a window holding all of it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Literal

import numpy as np
from scipy import ndimage

from crackal.errors import CrackalError, OptionError, check_options, choose
from crackal.inference.defect_list import DefectList
from crackal.inference.skeleton import SQRT2, closed_cells, hole_sizes, prune_spurs

WidthStatistic = Literal["mean", "median", "p95", "max"]
WIDTH_STATISTICS: tuple[WidthStatistic, ...] = ("mean", "median", "p95", "max")
CRACK_TYPES = ("longitudinal", "transverse", "diagonal", "block", "alligator")
UNKNOWN = "unknown"
_EIGHT = np.ones((3, 3), bool)
# the centre line's length is measured along chords between every LENGTH_STEP_PX-th pixel of its
# paths: 8-connected steps alone (1 or sqrt 2 each) over-count an inclined crack by up to 8 %
LENGTH_STEP_PX = 8


@dataclass(frozen=True)
class SeverityBands:
    """Severity classes by crack width in millimetres: ``names[i]`` for widths up to
    ``bounds_mm[i]`` (inclusive), the last name above the last bound.

    >>> bands = SeverityBands((6.0, 19.0))
    >>> bands.classify(6.0), bands.classify(7.5), bands.classify(25.0), bands.classify(None)
    ('low', 'moderate', 'high', 'unknown')
    """

    bounds_mm: tuple[float, ...]
    names: tuple[str, ...] = ("low", "moderate", "high")

    def __post_init__(self) -> None:
        if len(self.names) != len(self.bounds_mm) + 1:
            raise OptionError("severity", f"needs one name more than bounds: {len(self.bounds_mm)} bounds, names {list(self.names)}")
        if any(b <= 0 for b in self.bounds_mm) or list(self.bounds_mm) != sorted(set(self.bounds_mm)):
            raise OptionError("severity", f"bounds must be positive widths in mm, increasing; got {list(self.bounds_mm)}")

    def classify(self, width_mm: float | None) -> str:
        """The class of a width in mm (``unknown`` for None)."""
        if width_mm is None:
            return UNKNOWN
        for bound, name in zip(self.bounds_mm, self.names):
            if width_mm <= bound:
                return name
        return self.names[-1]


# FHWA, Distress Identification Manual for the LTPP (FHWA-RD-03-031): longitudinal and transverse
# cracking in asphalt by mean width; AASHTO Manual for Bridge Element Inspection, cracking in
# reinforced concrete: insignificant < 0.012 in, moderate 0.012-0.05 in, wide > 0.05 in.
SEVERITY_PRESETS = {
    "pavement": SeverityBands((6.0, 19.0)),
    "bridge": SeverityBands((0.3, 1.3)),
}


def severity_bands(spec: str | SeverityBands | None) -> SeverityBands:
    """``pavement`` (default), ``bridge``, or bounds in mm with optional names, ``"0.2,0.5"`` or
    ``"0.2,0.5:fine,medium,wide"``.

    >>> severity_bands("1,3:fine,medium,wide").classify(2.0)
    'medium'
    """
    if spec is None:
        return SEVERITY_PRESETS["pavement"]
    if isinstance(spec, SeverityBands):
        return spec
    if spec in SEVERITY_PRESETS:
        return SEVERITY_PRESETS[spec]
    bounds_text, _, names_text = spec.partition(":")
    try:
        bounds = tuple(float(b) for b in bounds_text.split(","))
    except ValueError:
        raise OptionError("severity", f"must be pavement, bridge or widths in mm like 0.3,1.3 (names optional: "
                                      f"0.3,1.3:low,moderate,high); got {spec!r}") from None
    if names_text:
        names = tuple(n.strip() for n in names_text.split(","))
    else:
        names = {1: ("low", "high"), 2: ("low", "moderate", "high")}.get(len(bounds)) or tuple(
            f"class{i + 1}" for i in range(len(bounds) + 1))
    return SeverityBands(bounds, names)


@dataclass
class DefectOptions:
    """How masks become defect instances (see the module docstring for what each one does)."""

    gap_px: float = 5.0  # pieces of one class whose pixels are this close (px) are one defect
    min_length_px: float = 10.0  # shorter cracks are dropped as noise
    min_area_px: int = 20  # smaller regions (potholes, patches ...) are dropped
    hole_px: int = 16  # holes up to this size in a crack mask are filled before thinning
    travel_direction_deg: float = 90.0  # direction of travel in the image, counter-clockwise from its x axis
    axis_tolerance_deg: float = 30.0  # longitudinal / transverse within this angle of that direction / its normal
    network_min_loops: int = 2  # a crack with this many closed cells ...
    network_min_branch_points: int = 6  # ... or this many branch points ...
    network_min_branch_density: float = 10.0  # ... at least this many per 100 x 100 px of its convex hull is a network
    alligator_max_cell_m2: float = 0.1  # network cells smaller than this are alligator cracking, larger block
    alligator_max_cell_px: float = 2500.0  # the same in px^2 when the GSD is unknown
    severity: SeverityBands = field(default_factory=lambda: SEVERITY_PRESETS["pavement"])
    severity_width: WidthStatistic = "mean"  # the width statistic the severity bands apply to
    spur_factor: float = 2.0  # centre-line spurs shorter than this x the radius at their branch point ...
    spur_px: float = 6.0  # ... or than this many px are pruned
    min_cell_px: int = 64  # closed cells of the centre line smaller than this are noise, not loops
    polyline_step_px: int = 8  # centre-line polylines go through every this-many-th pixel of each path
    simplify_px: float = 0.7  # polygon simplification tolerance (Douglas-Peucker)

    def __post_init__(self) -> None:
        self.severity = severity_bands(self.severity)
        choose(WIDTH_STATISTICS, self.severity_width, "severity_width")
        check_options([
            (self.gap_px >= 0, "gap", f"is a distance in px and must be >= 0, got {self.gap_px}"),
            (self.min_length_px >= 0, "min_length", f"must be >= 0 px, got {self.min_length_px}"),
            (0 <= self.axis_tolerance_deg <= 45, "axis_tolerance", f"must be between 0 and 45 degrees, got {self.axis_tolerance_deg}"),
            (self.alligator_max_cell_m2 > 0 and self.alligator_max_cell_px > 0, "alligator_max_cell",
             "must be a positive area"),
        ])

    def to_dict(self) -> dict:
        """The options as plain values (for defects.json)."""
        values = asdict(self)
        values["severity"] = {"bounds_mm": list(self.severity.bounds_mm), "names": list(self.severity.names)}
        return values


def is_crack_class(name: str) -> bool:
    """Classes measured as cracks (centre line, width, type); the others become regions."""
    return "crack" in name.lower()


def bridge_labels(mask: np.ndarray, gap_px: float) -> tuple[np.ndarray, int]:
    """Labels of the mask's pixels, pieces whose pixels lie within ``gap_px`` of each other
    sharing a label (8-connected when 0); background 0.

    >>> m = np.zeros((3, 12), bool); m[1, :4] = True; m[1, 7:] = True   # 3 px apart
    >>> bridge_labels(m, 4)[1], bridge_labels(m, 2)[1]
    (1, 2)
    """
    mask = np.asarray(mask, bool)
    if gap_px > 0 and mask.any():
        radius = gap_px / 2
        if radius <= 6:  # a small disk: dilation is cheaper than a distance transform, in time and memory
            reach = int(np.floor(radius))
            y, x = np.mgrid[-reach : reach + 1, -reach : reach + 1]
            near = ndimage.binary_dilation(mask, structure=x**2 + y**2 <= radius**2)
        else:
            near = ndimage.distance_transform_edt(~mask) <= radius
        labels, count = ndimage.label(near, structure=_EIGHT)
        labels[~mask] = 0
        # a dilated piece may hold none of the mask (never: every piece grows from mask pixels)
        return labels, count
    labels, count = ndimage.label(mask, structure=_EIGHT)
    return labels, count


def _fill_small_holes(mask: np.ndarray, max_px: int) -> np.ndarray:
    if max_px <= 0:
        return mask
    labels, sizes = hole_sizes(mask)
    small = (sizes > 0) & (sizes <= max_px)
    if not small.any():
        return mask
    return mask | small[labels]


def _orientation_deg(rows: np.ndarray, cols: np.ndarray) -> float:
    """Principal direction of points, degrees in [0, 180) counter-clockwise from the x axis."""
    if len(rows) < 2:
        return 0.0
    x, y = cols - cols.mean(), -(rows - rows.mean())
    cov = np.array([[np.mean(x * x), np.mean(x * y)], [np.mean(x * y), np.mean(y * y)]])
    values, vectors = np.linalg.eigh(cov)
    vx, vy = vectors[:, int(np.argmax(values))]
    return float(np.degrees(np.arctan2(vy, vx)) % 180.0)


def _angle_between(a: float, b: float) -> float:
    """Angle in [0, 90] between two undirected directions in degrees."""
    d = abs(a - b) % 180.0
    return min(d, 180.0 - d)


def _widths(filled: np.ndarray, skeleton: np.ndarray, distance: np.ndarray) -> np.ndarray:
    """Crack width (px) at each centre-line pixel: 2 d - 1, plus 1 where a straight neighbour
    off the centre line has the same distance (the ridge is two pixels thick: an even width)."""
    rows, cols = np.nonzero(skeleton)
    d = distance[rows, cols]
    padded_d = np.pad(distance, 1)
    padded_off = np.pad(filled & ~skeleton, 1)
    twin = np.zeros(len(rows), bool)
    for dy, dx in ((0, 1), (1, 0), (0, -1), (-1, 0)):
        r, c = rows + 1 + dy, cols + 1 + dx
        twin |= padded_off[r, c] & (np.abs(padded_d[r, c] - d) < 1e-6)
    return 2 * d - 1 + twin


def _every(points: np.ndarray, step: int) -> np.ndarray:
    """Every ``step``-th point of a path, its last one included."""
    if len(points) <= 2 or step <= 1:
        return points
    keep = np.arange(0, len(points), step)
    if keep[-1] != len(points) - 1:
        keep = np.append(keep, len(points) - 1)
    return points[keep]


def _chord_length(points: np.ndarray, step: int) -> float:
    """Length of a path along chords between every ``step``-th point."""
    sampled = _every(points, step)
    return float(np.hypot(*np.diff(sampled, axis=0).T).sum()) if len(sampled) > 1 else 0.0


def _simplify(points: np.ndarray, tolerance: float) -> np.ndarray:
    from skimage.measure import approximate_polygon

    if len(points) <= 2 or tolerance <= 0:
        return points
    return approximate_polygon(points, tolerance)


def _round_points(points: np.ndarray) -> list[list[float]]:
    return [[round(float(x), 2), round(float(y), 2)] for x, y in points]


def _convex_hull_area(rows: np.ndarray, cols: np.ndarray) -> float:
    """Area (px^2) of the convex hull of pixel squares: the hull of the pixel centres grown by
    the squares (the corners of the centres' hull vertices), without a point per corner."""
    if len(rows) == 0:
        return 0.0
    from scipy.spatial import ConvexHull, QhullError

    centres = np.stack([rows, cols], 1).astype(float)
    try:
        vertices = centres[ConvexHull(centres).vertices]
    except (QhullError, ValueError):  # all on one line: every centre is a candidate vertex
        vertices = centres
    corners = np.concatenate([vertices + [dy, dx] for dy in (-0.5, 0.5) for dx in (-0.5, 0.5)])
    try:
        return float(ConvexHull(corners).volume)
    except (QhullError, ValueError):
        return float(len(rows))


def _width_entry(widths: np.ndarray) -> dict[str, float]:
    if not len(widths):
        return dict.fromkeys(WIDTH_STATISTICS, 0.0)
    return {"mean": float(widths.mean()), "median": float(np.median(widths)), "p95": float(np.percentile(widths, 95)),
            "max": float(widths.max())}


def measure_crack(mask: np.ndarray, class_name: str, options: DefectOptions, gsd_m: float | None = None,
                  origin: tuple[int, int] = (0, 0)) -> dict | None:
    """One crack instance from its mask (a crop; ``origin`` = (row, col) of the crop's top-left
    pixel in the image), or None when it is shorter than ``min_length_px`` or smaller than
    ``min_area_px``."""
    mask = np.pad(np.asarray(mask, bool), 1)
    area = int(mask.sum())
    if area == 0:
        return None
    filled = _fill_small_holes(mask, options.hole_px)
    distance = ndimage.distance_transform_edt(filled)
    from skimage.morphology import skeletonize

    thin = skeletonize(filled)
    pixels = int(thin.sum())
    deepest = float(distance.max())
    # an upper bound of the length below: steps of at most sqrt 2, at most one free end more than pixels
    if SQRT2 * pixels + (pixels + 1) * max(deepest - 0.5, 0) < options.min_length_px:
        return None
    if not pixels:  # a blob thinning removed entirely: its deepest pixel
        thin[np.unravel_index(int(np.argmax(distance)), distance.shape)] = True
    skeleton, graph = prune_spurs(thin, distance, options.spur_factor, options.spur_px)
    degree = graph.degree
    ends = degree <= 1
    extension = np.maximum(distance[graph.rows[ends], graph.cols[ends]] - 0.5, 0) * np.where(degree[ends] == 0, 2, 1)
    row0, col0 = origin[0] - 1, origin[1] - 1  # the crop was padded by one pixel
    paths = [np.stack([graph.cols[p] + 0.5, graph.rows[p] + 0.5], 1).astype(float) for p in graph.paths()]
    length = sum(_chord_length(p, LENGTH_STEP_PX) for p in paths) + float(extension.sum())
    if length < options.min_length_px:
        return None
    widths = _width_entry(_widths(filled, skeleton, distance))
    orientation = _orientation_deg(graph.rows.astype(float), graph.cols.astype(float))
    loops, branches = closed_cells(skeleton, options.min_cell_px), graph.branch_points()

    rows, cols = np.nonzero(mask)
    entry: dict = {"class": class_name}
    hull = _convex_hull_area(rows, cols) if loops or branches >= options.network_min_branch_points else 0.0
    network = loops >= options.network_min_loops or (
        branches >= options.network_min_branch_points and branches / max(hull, 1.0) * 1e4 >= options.network_min_branch_density)
    cell_px = None
    if network or "alligator" in class_name.lower():
        cells = max(loops, math.ceil(branches / 2), 1)
        cell_px = (hull or _convex_hull_area(rows, cols)) / cells
        small = cell_px * gsd_m**2 < options.alligator_max_cell_m2 if gsd_m else cell_px < options.alligator_max_cell_px
        kind = "alligator" if small or "alligator" in class_name.lower() else "block"
    else:
        offset = _angle_between(orientation, options.travel_direction_deg)
        kind = ("longitudinal" if offset <= options.axis_tolerance_deg
                else "transverse" if offset >= 90 - options.axis_tolerance_deg else "diagonal")
    width_for_severity = widths[options.severity_width] * gsd_m * 1000 if gsd_m else None
    entry.update(type=kind, severity=options.severity.classify(width_for_severity))
    entry["length_px"] = round(length, 2)
    entry["area_px"] = area
    for stat, value in widths.items():
        entry[f"width_{stat}_px"] = round(value, 2)
    entry["width_area_px"] = round(area / max(length, 1.0), 2)
    if gsd_m:
        entry["length_m"] = round(length * gsd_m, 4)
        entry["area_m2"] = round(area * gsd_m**2, 6)
        for stat, value in widths.items():
            entry[f"width_{stat}_mm"] = round(value * gsd_m * 1000, 2)
    entry.update(orientation_deg=round(orientation, 1), loops=loops, branch_points=branches)
    entry["cell_area_px"] = None if cell_px is None else round(cell_px, 1)
    entry["bbox"] = [int(cols.min() + col0), int(rows.min() + row0), int(cols.max() + col0 + 1), int(rows.max() + row0 + 1)]
    entry["centroid"] = [round(float(cols.mean() + col0 + 0.5), 2), round(float(rows.mean() + row0 + 0.5), 2)]
    lines = []
    for points in paths:
        points = _every(points, options.polyline_step_px) + [col0, row0]
        lines.append(_round_points(points if len(points) > 1 else np.concatenate([points, points])))
    entry["lines"] = lines
    return entry


def measure_region(mask: np.ndarray, class_name: str, options: DefectOptions, gsd_m: float | None = None,
                   origin: tuple[int, int] = (0, 0)) -> dict | None:
    """A region (pothole, patch, manhole ...): outline polygons of its pieces (holes not cut
    out), area and bounding box; None when smaller than ``min_area_px``."""
    from skimage.measure import find_contours

    mask = np.asarray(mask, bool)
    area = int(mask.sum())
    if area < max(1, options.min_area_px):
        return None
    rows, cols = np.nonzero(mask)
    row0, col0 = origin
    polygons = []
    pieces, count = ndimage.label(mask, structure=_EIGHT)
    for index, piece in enumerate(ndimage.find_objects(pieces), start=1):
        if piece is None:
            continue
        solid = ndimage.binary_fill_holes(pieces[piece] == index)
        contours = find_contours(np.pad(solid, 1).astype(np.float32), 0.5, fully_connected="high")
        if not contours:
            continue
        outline = max(contours, key=len)  # (row, col) in the padded crop; pixel edges at +-0.5
        points = np.stack([outline[:, 1] - 0.5 + piece[1].start + col0, outline[:, 0] - 0.5 + piece[0].start + row0], 1)
        points = _simplify(points, options.simplify_px)
        if len(points) >= 4:
            polygons.append(_round_points(points))
    entry: dict = {"class": class_name, "type": "region", "severity": UNKNOWN, "area_px": area}
    if gsd_m:
        entry["area_m2"] = round(area * gsd_m**2, 6)
    entry["bbox"] = [int(cols.min() + col0), int(rows.min() + row0), int(cols.max() + col0 + 1), int(rows.max() + row0 + 1)]
    entry["centroid"] = [round(float(cols.mean() + col0 + 0.5), 2), round(float(rows.mean() + row0 + 0.5), 2)]
    entry["polygons"] = polygons
    return entry


def measure_instance(mask: np.ndarray, class_name: str, options: DefectOptions, gsd_m: float | None = None,
                     origin: tuple[int, int] = (0, 0)) -> dict | None:
    """``measure_crack`` for crack classes, ``measure_region`` for the others."""
    measure = measure_crack if is_crack_class(class_name) else measure_region
    return measure(mask, class_name, options, gsd_m, origin)


def extract_defects(class_mask: np.ndarray, class_names: list[str], options: DefectOptions | None = None,
                    gsd_m: float | None = None) -> list[dict]:
    """Every defect instance of a class mask ``(H, W)`` (class indices; background 0, 255
    ignored), sorted by class, then top to bottom, left to right.

    >>> m = np.zeros((40, 120), np.uint8); m[20:23, 10:110] = 1
    >>> [(d["type"], round(d["length_px"]), d["width_median_px"]) for d in extract_defects(m, ["background", "crack"])]
    [('transverse', 99, 3.0)]
    """
    height, width = class_mask.shape
    found: list[dict] = []
    defects_by_blocks(lambda r0, r1, c0, c1: class_mask[r0:r1, c0:c1], height, width, class_names, options, gsd_m,
                      block=max(height, width, 1), found=found)
    return found


class _UnionFind:
    def __init__(self) -> None:
        self.parent: dict = {}

    def find(self, key):
        self.parent.setdefault(key, key)
        root = key
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[key] != root:
            self.parent[key], key = root, self.parent[key]
        return root

    def union(self, a, b) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


@dataclass
class _Piece:
    """Part of a defect seen in one block that reaches into the block's halo."""

    bbox: list[int]  # global [r0, c0, r1, c1] of its pixels in the window (halo included)
    seed: tuple[int, int]  # a global (row, col) of one of its pixels in the block's core
    core: tuple[int, int, int, int]  # the block's core, global (r0, r1, c0, c1)


def defects_by_blocks(
    read: Callable[[int, int, int, int], np.ndarray],
    height: int,
    width: int,
    class_names: list[str],
    options: DefectOptions | None = None,
    gsd_m: float | None = None,
    block: int = 4096,
    max_instance_px: int | None = None,
    found: list[dict] | DefectList | None = None,
) -> list[dict] | DefectList:
    """``extract_defects`` on a class mask read in blocks: ``read(r0, r1, c0, c1)`` returns the
    mask's rows r0..r1, columns c0..c1. Memory holds one block (plus a halo of the gap) at a
    time; a defect crossing block borders is found once, as the pieces whose labels meet in
    the overlapping halos are joined, and is measured from a window around all its pieces (a
    defect whose box exceeds ``max_instance_px``, default a block's area and at least 4096 x
    4096 px, is measured piece by piece instead, each piece flagged with the same ``group``).
    The defects go into ``found`` (a new list by default; a ``DefectList`` keeps them on disk),
    sorted by class, then box left, then box top."""
    options = options or DefectOptions()
    max_instance_px = max(block, 4096) ** 2 if max_instance_px is None else max_instance_px
    if block < 16:
        raise CrackalError(f"block must be at least 16 px, got {block}")
    halo = int(math.ceil(options.gap_px)) + 2
    found = [] if found is None else found
    union = _UnionFind()
    pieces: dict[tuple, _Piece] = {}
    starts_r, starts_c = list(range(0, height, block)), list(range(0, width, block))
    strips: dict[tuple[int, int], dict] = {}  # per block: right and bottom strips of its window labels, per class

    for bi, r0 in enumerate(starts_r):
        for bj, c0 in enumerate(starts_c):
            r1, c1 = min(r0 + block, height), min(c0 + block, width)
            wr0, wr1, wc0, wc1 = max(0, r0 - halo), min(height, r1 + halo), max(0, c0 - halo), min(width, c1 + halo)
            window = np.asarray(read(wr0, wr1, wc0, wc1))
            core = (slice(r0 - wr0, r1 - wr0), slice(c0 - wc0, c1 - wc0))
            saved: dict = {}
            for index, name in enumerate(class_names):
                if index == 0:
                    continue
                mask = window == index
                if not mask.any():
                    continue
                labels, count = _instance_labels(mask, name, options)
                too_short = _too_short(mask, labels, count, options) if is_crack_class(name) else np.zeros(count + 1, bool)
                in_core = np.zeros_like(mask)
                in_core[core] = True
                for label, box in enumerate(ndimage.find_objects(labels), start=1):
                    if box is None:
                        continue
                    own = labels[box] == label
                    core_part = own & in_core[box]
                    if not core_part.any():
                        continue  # all in the halo: a neighbouring block's
                    if core_part.sum() == own.sum():  # complete in this block: measure now
                        if too_short[label]:
                            continue
                        entry = measure_instance(own & mask[box], name, options, gsd_m, (box[0].start + wr0, box[1].start + wc0))
                        if entry is not None:
                            found.append(entry)
                        continue
                    r, c = np.argwhere(core_part)[0]
                    key = (index, bi, bj, label)
                    pieces[key] = _Piece([box[0].start + wr0, box[1].start + wc0, box[0].stop + wr0, box[1].stop + wc0],
                                         (int(r + box[0].start + wr0), int(c + box[1].start + wc0)), (r0, r1, c0, c1))
                    union.find(key)
                saved[index] = {"window": (wr0, wr1, wc0, wc1), "right": labels[:, -2 * halo:].copy(),
                                "bottom": labels[-2 * halo:, :].copy(), "labels": labels}
                # join with the pieces of the blocks already seen: left, up-left, up, up-right
                for ni, nj, side in ((bi, bj - 1, "right"), (bi - 1, bj - 1, "bottom"), (bi - 1, bj, "bottom"),
                                     (bi - 1, bj + 1, "bottom")):
                    other = strips.get((ni, nj), {}).get(index)
                    if other is not None:
                        _join(union, pieces, index, (bi, bj), saved[index], (ni, nj), other, side)
                del saved[index]["labels"]
            strips[(bi, bj)] = saved
            for done in [k for k in strips if k[0] < bi - 1]:
                del strips[done]

    groups: dict[tuple, list[tuple]] = {}
    for key in pieces:
        groups.setdefault(union.find(key), []).append(key)
    for number, members in enumerate(groups.values()):
        index = members[0][0]
        name = class_names[index]
        r0 = min(pieces[k].bbox[0] for k in members)
        c0 = min(pieces[k].bbox[1] for k in members)
        r1 = max(pieces[k].bbox[2] for k in members)
        c1 = max(pieces[k].bbox[3] for k in members)
        if (r1 - r0) * (c1 - c0) <= max_instance_px:
            entry = _measure_window(read, index, name, (r0, r1, c0, c1), pieces[members[0]].seed, height, width, halo,
                                    options, gsd_m)
            if entry is not None:
                found.append(entry)
            continue
        for key in members:  # too large to hold at once: each block's piece on its own, cut to the block
            box = pieces[key].bbox
            entry = _measure_window(read, index, name, (box[0], box[2], box[1], box[3]), pieces[key].seed, height,
                                    width, halo, options, gsd_m, clip=pieces[key].core)
            if entry is not None:
                entry["group"] = number
                found.append(entry)
    found.sort(key=lambda d: (class_names.index(d["class"]), d["bbox"][1], d["bbox"][0]))
    return found


def _instance_labels(mask: np.ndarray, name: str, options: DefectOptions) -> tuple[np.ndarray, int]:
    """``bridge_labels`` of a class's mask; for cracks with their small holes filled (holes get
    the label of the crack around them)."""
    if is_crack_class(name):
        mask = _fill_small_holes(mask, options.hole_px)
    return bridge_labels(mask, options.gap_px)


def _too_short(mask: np.ndarray, labels: np.ndarray, count: int, options: DefectOptions) -> np.ndarray:
    """Per label: True where the crack cannot reach ``min_length_px`` (the bound of
    ``measure_crack`` from the whole block's skeleton), so the many specks of a prediction
    cost no measurement."""
    short = np.zeros(count + 1, bool)
    if options.min_length_px <= 0 or count == 0:
        return short
    from skimage.morphology import skeletonize

    filled = labels > 0
    thin = skeletonize(_fill_small_holes(mask, options.hole_px))
    pixels = np.bincount(labels[thin], minlength=count + 1)
    deepest = np.zeros(count + 1)  # the city-block distance: at least the Euclidean, in a quarter of the memory
    # the largest per label over the labelled pixels alone: ndimage.maximum sorts the whole block
    np.maximum.at(deepest, labels[filled], ndimage.distance_transform_cdt(filled, metric="taxicab")[filled])
    bound = SQRT2 * pixels + (pixels + 1) * np.maximum(deepest - 0.5, 0)
    short[1:] = bound[1:] < options.min_length_px
    return short


def _join(union: _UnionFind, pieces: dict, index: int, here: tuple[int, int], mine: dict, there: tuple[int, int],
          other: dict, side: str) -> None:
    """Union the pieces of two blocks whose labels share pixels where their windows overlap."""
    wr0, wr1, wc0, wc1 = mine["window"]
    orr0, orr1, oc0, oc1 = other["window"]
    strip = other[side]
    sr0 = orr0 if side == "right" else orr1 - strip.shape[0]
    sc0 = oc1 - strip.shape[1] if side == "right" else oc0
    r0, r1 = max(wr0, sr0), min(wr1, sr0 + strip.shape[0])
    c0, c1 = max(wc0, sc0), min(wc1, sc0 + strip.shape[1])
    if r0 >= r1 or c0 >= c1:
        return
    a = mine["labels"][r0 - wr0 : r1 - wr0, c0 - wc0 : c1 - wc0]
    b = strip[r0 - sr0 : r1 - sr0, c0 - sc0 : c1 - sc0]
    both = (a > 0) & (b > 0)
    for la, lb in set(zip(a[both].tolist(), b[both].tolist())):
        ka, kb = (index, *here, la), (index, *there, lb)
        if ka in pieces and kb in pieces:
            union.union(ka, kb)


def _measure_window(read, index: int, name: str, box: tuple[int, ...], seed: tuple[int, int], height: int, width: int,
                    halo: int, options: DefectOptions, gsd_m: float | None,
                    clip: tuple[int, int, int, int] | None = None) -> dict | None:
    """Measure the defect holding ``seed`` from a window around ``box`` (r0, r1, c0, c1); with
    ``clip`` (r0, r1, c0, c1) only its pixels inside that box."""
    r0, r1, c0, c1 = max(0, box[0] - halo), min(height, box[1] + halo), max(0, box[2] - halo), min(width, box[3] + halo)
    mask = np.asarray(read(r0, r1, c0, c1)) == index
    labels, _ = _instance_labels(mask, name, options)
    label = labels[seed[0] - r0, seed[1] - c0]
    chosen = (labels == label) & mask
    if clip is not None:
        inside = np.zeros_like(chosen)
        inside[max(0, clip[0] - r0) : clip[1] - r0, max(0, clip[2] - c0) : clip[3] - c0] = True
        chosen &= inside
    where = ndimage.find_objects(chosen.astype(np.int32))[0]
    own = chosen[where]
    return measure_instance(own, name, options, gsd_m, (where[0].start + r0, where[1].start + c0))
