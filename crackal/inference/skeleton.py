"""A crack's centre line as a graph: skeleton pixels are the vertices, 8-neighbours the edges.

A diagonal step between two skeleton pixels is dropped when the two also meet through a
straight neighbour of both (an L-corner), so a step is counted once and three pixels never
make a triangle: the graph's length is the centre-line length ``measure.crack_length_px``
gives, its junctions are true branch points and its independent cycles (``edges - vertices +
components``) the closed cells of a crack network.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage, sparse

SQRT2 = float(np.sqrt(2.0))
# (dy, dx) of the forward half of the 8-neighbourhood; each pixel pair is seen once
_FORWARD = ((0, 1, 1.0), (1, 0, 1.0), (1, 1, SQRT2), (1, -1, SQRT2))


@dataclass
class SkeletonGraph:
    """Skeleton pixels ``rows, cols`` (vertices) and the steps between them (a symmetric sparse
    matrix of step lengths, 1 or sqrt 2)."""

    rows: np.ndarray
    cols: np.ndarray
    steps: sparse.csr_matrix
    _paths: list[list[int]] | None = field(default=None, repr=False)

    @property
    def degree(self) -> np.ndarray:
        """Number of neighbours of each vertex: 1 at a free end, 2 along a line, 3+ at a branch point."""
        return np.diff(self.steps.indptr)

    @property
    def length(self) -> float:
        """Sum of the step lengths, each step once."""
        return float(self.steps.sum() / 2)

    def components(self) -> int:
        """Number of connected pieces."""
        if not len(self.rows):
            return 0
        return int(sparse.csgraph.connected_components(self.steps, directed=False)[0])

    def loops(self) -> int:
        """Independent cycles (closed cells): edges - vertices + components."""
        edges = self.steps.nnz // 2
        return max(0, edges - len(self.rows) + self.components())

    def branch_points(self) -> int:
        """Junctions: groups of touching vertices with 3 or more neighbours, each group once."""
        junction = self.degree >= 3
        if not junction.any():
            return 0
        sub = self.steps[junction][:, junction]
        return int(sparse.csgraph.connected_components(sub, directed=False)[0])

    def neighbours(self, i: int) -> np.ndarray:
        """The vertices next to vertex ``i``."""
        return self.steps.indices[self.steps.indptr[i] : self.steps.indptr[i + 1]]

    def paths(self) -> list[list[int]]:
        """The centre line as paths of vertex indices, each between two nodes (free ends or
        branch points; a closed loop without a node starts and ends at one of its pixels).
        Every step belongs to exactly one path."""
        if self._paths is None:
            self._paths = self._trace()
        return self._paths

    def _trace(self) -> list[list[int]]:
        degree = self.degree
        seen: set[tuple[int, int]] = set()
        result = []

        def walk(start: int, nxt: int) -> list[int]:
            path, prev, cur = [start], start, nxt
            seen.add((min(start, nxt), max(start, nxt)))
            while True:
                path.append(cur)
                if degree[cur] != 2 or cur == start:
                    return path
                after = [n for n in self.neighbours(cur) if n != prev]
                if not after:  # a two-vertex loop cannot happen; be safe
                    return path
                prev, cur = cur, int(after[0])
                key = (min(prev, cur), max(prev, cur))
                if key in seen:
                    return path
                seen.add(key)

        for node in np.flatnonzero(degree != 2):
            if degree[node] == 0:
                result.append([int(node)])
            for n in self.neighbours(node):
                if (min(node, n), max(node, n)) not in seen:
                    result.append(walk(int(node), int(n)))
        for v in range(len(self.rows)):  # loops made only of degree-2 vertices
            for n in self.neighbours(v):
                if (min(v, n), max(v, n)) not in seen:
                    result.append(walk(v, int(n)))
        return result

    def path_length(self, path: list[int]) -> float:
        """Length of a path of vertex indices."""
        if len(path) < 2:
            return 0.0
        dy = np.diff(self.rows[path])
        dx = np.diff(self.cols[path])
        return float(np.hypot(dy, dx).sum())


def skeleton_graph(skeleton: np.ndarray) -> SkeletonGraph:
    """The graph of a binary skeleton image (see the module docstring).

    >>> s = np.zeros((5, 7), bool); s[2, 1:6] = True; s[0:2, 3] = True   # a T
    >>> g = skeleton_graph(s)
    >>> g.length, g.branch_points(), g.loops(), sorted(g.degree.tolist())
    (6.0, 1, 0, [1, 1, 1, 2, 2, 2, 3])
    """
    skeleton = np.asarray(skeleton, bool)
    rows, cols = np.nonzero(skeleton)
    count = len(rows)
    index = np.full(skeleton.shape, -1, np.int64)
    index[rows, cols] = np.arange(count)
    padded = np.pad(skeleton, 1)
    heads, tails, weights = [], [], []
    for dy, dx, weight in _FORWARD:
        r, c = rows + dy, cols + dx
        inside = (r >= 0) & (r < skeleton.shape[0]) & (c >= 0) & (c < skeleton.shape[1])
        ok = np.zeros(count, bool)
        ok[inside] = skeleton[r[inside], c[inside]]
        if dy and dx:  # a diagonal step with a straight way around it is no step of its own
            corner = padded[rows + 1, cols + dx + 1] | padded[rows + dy + 1, cols + 1]
            ok &= ~corner
        heads.append(np.flatnonzero(ok))
        tails.append(index[r[ok], c[ok]])
        weights.append(np.full(int(ok.sum()), weight))
    head = np.concatenate(heads) if heads else np.zeros(0, np.int64)
    tail = np.concatenate(tails) if tails else np.zeros(0, np.int64)
    weight = np.concatenate(weights) if weights else np.zeros(0)
    steps = sparse.coo_matrix((np.concatenate([weight, weight]), (np.concatenate([head, tail]), np.concatenate([tail, head]))),
                              shape=(count, count)).tocsr()
    return SkeletonGraph(rows, cols, steps)


def prune_spurs(skeleton: np.ndarray, radius: np.ndarray, factor: float = 2.0, min_px: float = 2.0,
                rounds: int = 3) -> tuple[np.ndarray, SkeletonGraph]:
    """The skeleton without its spurs, and its graph: branches from a free end to a branch
    point shorter than ``max(min_px, factor x radius at the branch point)`` (``radius``: the
    distance transform of the crack mask), the short forks a thinning leaves at the ends and
    sides of a thick crack."""
    skeleton = np.asarray(skeleton, bool).copy()
    graph = skeleton_graph(skeleton)
    for _ in range(rounds):
        degree = graph.degree
        if not (degree >= 3).any():
            break
        removed = False
        for path in graph.paths():
            first, last = degree[path[0]], degree[path[-1]]
            if not ((first == 1 and last >= 3) or (first >= 3 and last == 1)):
                continue
            junction = path[0] if first >= 3 else path[-1]
            limit = max(min_px, factor * float(radius[graph.rows[junction], graph.cols[junction]]))
            if graph.path_length(path) < limit:
                tip = [v for v in path if v != junction]
                skeleton[graph.rows[tip], graph.cols[tip]] = False
                removed = True
        if not removed:
            break
        graph = skeleton_graph(skeleton)
    return skeleton, graph


def closed_cells(skeleton: np.ndarray, min_px: int = 1) -> int:
    """Number of regions a skeleton encloses (its closed cells) of at least ``min_px`` pixels.

    >>> ring = np.zeros((12, 12), bool); ring[2, 2:10] = ring[9, 2:10] = ring[2:10, 2] = ring[2:10, 9] = True
    >>> closed_cells(ring), closed_cells(ring, min_px=64)
    (1, 0)
    """
    inside = ndimage.binary_fill_holes(skeleton) & ~np.asarray(skeleton, bool)
    labels, count = ndimage.label(inside)
    if not count:
        return 0
    return int((np.bincount(labels.ravel())[1:] >= min_px).sum())
