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
VECTOR_TRACE_FROM = 2000  # skeletons of this many pixels or more are traced chain by chain, not step by step


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
        return self._walk() if len(self.rows) < VECTOR_TRACE_FROM else self._chains()

    def _walk(self) -> list[list[int]]:
        """Paths by walking from each node along its steps: quick for small skeletons."""
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
                prev, cur = cur, int(after[0])
                key = (min(prev, cur), max(prev, cur))
                if key in seen:
                    return path
                seen.add(key)

        for node in np.flatnonzero(degree != 2).tolist():
            if degree[node] == 0:
                result.append([node])
            for n in self.neighbours(node).tolist():
                if (min(node, n), max(node, n)) not in seen:
                    result.append(walk(node, n))
        for v in range(len(self.rows)):  # loops made only of degree-2 vertices
            for n in self.neighbours(v).tolist():
                if (min(v, n), max(v, n)) not in seen:
                    result.append(walk(v, n))
        return result

    def _chains(self) -> list[list[int]]:
        """Paths without a Python step per pixel: the vertices of degree 2 form chains (the
        components of the graph without its nodes), each ordered by its distance from one end
        (one multi-source breadth-first search for all chains), then joined to the nodes at
        its ends; node-to-node steps are paths of two vertices, a free vertex a path of one."""
        degree = self.degree
        node = degree != 2
        result: list[list[int]] = [[int(v)] for v in np.flatnonzero(degree == 0)]
        coo = self.steps.tocoo()
        direct = (coo.row < coo.col) & node[coo.row] & node[coo.col]
        result += [[int(a), int(b)] for a, b in zip(coo.row[direct], coo.col[direct])]
        chain = np.flatnonzero(~node)
        if not len(chain):
            return result
        inner = self.steps[chain][:, chain].tocsr()
        count, component = sparse.csgraph.connected_components(inner, directed=False)
        inner_degree = np.diff(inner.indptr)
        # one start per chain: its lowest vertex with fewer than 2 chain neighbours (an end), else (a loop) its lowest
        order = np.lexsort((np.arange(len(chain)), inner_degree > 1, component))
        first = np.ones(len(order), bool)
        first[1:] = component[order[1:]] != component[order[:-1]]
        heads = order[first]  # one per component, in component order
        loops = inner_degree[heads] == 2
        if loops.any():  # cut each loop open next to its start, so distances run one way round
            inner = inner.tolil()
            for head in heads[loops]:
                other = inner.rows[head][0]
                inner[head, other] = 0
                inner[other, head] = 0
            inner = inner.tocsr()
            inner.eliminate_zeros()
        distance = sparse.csgraph.dijkstra(inner, directed=False, indices=heads, unweighted=True, min_only=True)
        ranked = np.lexsort((distance, component))
        bounds = np.flatnonzero(np.diff(component[ranked])) + 1
        for index, members in enumerate(np.split(ranked, bounds)):
            vertices = chain[members].tolist()
            if loops[index]:
                result.append([*vertices, vertices[0]])
                continue
            head_nodes = [int(n) for n in self.neighbours(vertices[0]) if node[n]]
            tail_nodes = [int(n) for n in self.neighbours(vertices[-1]) if node[n]]
            if len(vertices) == 1:  # one vertex between two nodes
                result.append([head_nodes[0], vertices[0], head_nodes[-1]])
            else:
                result.append([*head_nodes[:1], *vertices, *tail_nodes[:1]])
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
    for dy, dx, step in _FORWARD:
        r, c = rows + dy, cols + dx
        inside = (r >= 0) & (r < skeleton.shape[0]) & (c >= 0) & (c < skeleton.shape[1])
        ok = np.zeros(count, bool)
        ok[inside] = skeleton[r[inside], c[inside]]
        if dy and dx:  # a diagonal step with a straight way around it is no step of its own
            corner = padded[rows + 1, cols + dx + 1] | padded[rows + dy + 1, cols + 1]
            ok &= ~corner
        heads.append(np.flatnonzero(ok))
        tails.append(index[r[ok], c[ok]])
        weights.append(np.full(int(ok.sum()), step))
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
    sizes = hole_sizes(np.asarray(skeleton, bool))[1]
    return int((sizes[1:] >= min_px).sum())


def hole_sizes(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The holes of a mask: a label image of the background regions that do not reach the
    border (4-connected, as a thinning sees them; 0 elsewhere) and their sizes (index 0: 0).
    One labelling pass, where ``binary_fill_holes`` iterates a dilation."""
    labels, count = ndimage.label(~mask)
    border = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    sizes = np.bincount(labels.ravel(), minlength=count + 1)
    sizes[border] = 0
    sizes[0] = 0
    hole = sizes > 0
    return np.where(hole[labels], labels, 0), sizes
