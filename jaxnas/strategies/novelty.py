"""Novelty search over single-path architectures: archives, distances, k-NN novelty, EN²AS's novelty
ES (Zhang thesis ch. 2, spec ``002_zhang_thesis.md`` section 1) and NSAS's constraint selection
(ch. 3, spec section 2). Pure ``jnp`` functions that run inside a jitted step.

A *path* is ``{cell_key: int32[E]}``: one operation index per edge of that cell type, ``NONE`` (0,
the "none" operation) on the edges the architecture does not use. NAS-Bench-201 has one key
``"cell"`` with 6 edges and any operation on each; the DARTS space has ``"normal"`` and ``"reduce"``
with 14 edges each, and every intermediate node 2..5 uses exactly two edges, from distinct sources,
with operations other than none.

An *archive* of capacity M is ``Archive(paths={cell_key: [M, W]}, size=int32[])``; rows at or
beyond ``size`` are invalid. The same type holds NSAS's constraints, its FIFO of recent paths, and
EN²AS's continuous members (float rows of an encoding: ``PerEdgeEncoding``, ``DartsNodeEncoding``).

Capacities, k, the numbers of draws and perturbations, sigma, distances, encodings and cell
structures are static (Python values, the objects frozen and hashable); a bad value raises a
ValueError when the function is traced.
"""

import dataclasses
import numbers
from typing import Callable, Mapping, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxnas.spaces.genotypes import DARTS_EDGES, NB201_EDGES
from jaxnas.spaces.ops import DARTS_OPS
from jaxnas.trees import tree_index

NONE = 0  # the index of the "none" operation in every path

Path = dict  # {cell_key: int32[..., E]}


@dataclasses.dataclass(frozen=True, init=False)
class CellEdges:
    """The ``(src, dst)`` edges of each cell key, in path order; hashable (a static argument).

    ``CellEdges({"cell": NB201_EDGES})``; ``NB201_CELLS`` and ``DARTS_CELLS`` are the two spaces.
    """

    cells: tuple[tuple[str, tuple[tuple[int, int], ...]], ...]

    def __init__(self, edges: Mapping[str, Sequence[tuple[int, int]]]):
        if not edges:
            raise ValueError("CellEdges needs at least one cell key with its edges.")
        object.__setattr__(self, "cells", tuple(
            (key, tuple((int(src), int(dst)) for src, dst in edges[key])) for key in sorted(edges)))

    def node_masks(self) -> dict[str, np.ndarray]:
        """``{cell_key: bool[E, nodes]}``: edge e enters the n-th destination node of the cell."""
        masks = {}
        for key, edges in self.cells:
            nodes = sorted({dst for _, dst in edges})
            masks[key] = np.array([[dst == node for node in nodes] for _, dst in edges])
        return masks

    def check(self, path: Path) -> None:
        """Raises a ValueError unless ``path`` has these cell keys and E entries per row."""
        expected = {key: len(edges) for key, edges in self.cells}
        got = {key: jnp.shape(value)[-1] if jnp.ndim(value) else None
               for key, value in path.items()}
        if got != expected:
            raise ValueError(f"A path of this space has {{cell_key: edges}} = {expected}, got "
                             f"{got}; pass paths of the space the CellEdges describe.")


NB201_CELLS = CellEdges({"cell": NB201_EDGES})
DARTS_CELLS = CellEdges({"normal": DARTS_EDGES, "reduce": DARTS_EDGES})


# ----------------------------------------------------------------------------------------------
# Archives

class Archive(NamedTuple):
    """A fixed-capacity set of paths (or encodings): ``paths`` ``{cell_key: [M, W]}``; ``size``
    int32[], the rows ``[0, size)`` are the valid members."""

    paths: Path
    size: jax.Array


def empty_archive(shapes: Mapping[str, int], capacity: int, dtype=jnp.int32) -> Archive:
    """An archive of ``capacity`` (M) rows of width ``shapes[cell_key]`` (E for paths, the encoding
    width for EN²AS's members, e.g. ``{k: e for k, (e, _) in space.arch_shapes().items()}``)."""
    _check_int("The archive capacity (M)", capacity, 1, None,
               "an archive holds at least one path; set the archive size to 1 or more")
    if not shapes or any(isinstance(w, bool) or not isinstance(w, int) or w < 1
                         for w in shapes.values()):
        raise ValueError(f"shapes must map each cell key to a row width >= 1, got {shapes!r}.")
    return Archive({key: jnp.zeros((capacity, width), dtype) for key, width in shapes.items()},
                   jnp.zeros((), jnp.int32))


def capacity(archive: Archive) -> int:
    """M, the number of rows (static)."""
    return jax.tree.leaves(archive.paths)[0].shape[0]


def valid(archive: Archive) -> jax.Array:
    """bool[M]: which rows are members."""
    return jnp.arange(capacity(archive)) < archive.size


def member(archive: Archive, index) -> Path:
    """Row ``index`` as a path (or encoding)."""
    return tree_index(archive.paths, index)


def replace(archive: Archive, index, path: Path) -> Archive:
    """Row ``index`` (a member, ``index < size``) set to ``path``; the size is unchanged."""
    return archive._replace(paths=jax.tree.map(
        lambda rows, row: rows.at[index].set(jnp.asarray(row, rows.dtype)), archive.paths, path))


def add(archive: Archive, path: Path) -> Archive:
    """``path`` appended while there is room; a full archive comes back unchanged."""
    room = archive.size < capacity(archive)
    appended = replace(archive, jnp.minimum(archive.size, capacity(archive) - 1), path)
    return Archive(_select(room, appended.paths, archive.paths), archive.size + room)


def push(archive: Archive, path: Path) -> Archive:
    """FIFO: ``path`` appended, the oldest member dropped when full (rows stay oldest first)."""
    full = archive.size >= capacity(archive)
    rolled = _select(full, jax.tree.map(lambda rows: jnp.roll(rows, -1, axis=0), archive.paths),
                     archive.paths)
    last = jnp.minimum(archive.size, capacity(archive) - 1)
    return replace(Archive(rolled, archive.size), last, path)._replace(size=last + 1)


# ----------------------------------------------------------------------------------------------
# Distances: ``distance(a, b)`` with paths of broadcastable leading shapes, [...] -> float32[...]

@dataclasses.dataclass(frozen=True)
class EdgeMatch:
    """The fraction of nodes, over all cell keys, whose set of ``(input, op != none)`` pairs differs
    (spec 1.4 and 2.6); DARTS: ``(8 - #matching nodes) / 8``. In [0, 1]: 1 for paths that share no
    ``(input, op)`` pair where every node uses an edge in one of them (always so in DARTS). A path
    holds each ``(input, node)`` edge once, so a node's set differs exactly when one of its
    incoming edges holds another operation."""

    cells: CellEdges

    def __call__(self, a: Path, b: Path) -> jax.Array:
        self.cells.check(a)
        self.cells.check(b)
        masks = self.cells.node_masks()
        differing = sum(
            jnp.sum(((a[key] != b[key]).astype(jnp.int32) @ mask.astype(jnp.int32)) > 0, axis=-1)
            for key, mask in masks.items())
        return differing / sum(mask.shape[1] for mask in masks.values())


@dataclasses.dataclass(frozen=True)
class OneHotL2:
    """The L2 distance between the one-hot ``[E, K]`` encodings of all cells (Eq. 2.4's behaviour
    distance): ``sqrt(2 * #edges whose operation differs)``."""

    def __call__(self, a: Path, b: Path) -> jax.Array:
        differing = sum(jnp.sum(a[key] != b[key], axis=-1) for key in sorted(a))
        return jnp.sqrt(2.0 * differing)


Distance = Callable[[Path, Path], jax.Array]


def knn_novelty(path: Path, archive: Archive, k: int, distance: Distance,
                exclude=None) -> jax.Array:
    """Eq. 2.4 / 3.5: the mean distance from ``path`` to its ``k`` nearest valid members, float32[].

    ``exclude``: a row index left out (EN²AS leaves out the member being updated, spec 1.7). With
    fewer than k members the mean is over all of them; with none, the novelty is 0.
    """
    rows = capacity(archive)
    _check_int("k (the nearest neighbours of the novelty)", k, 1, rows,
               f"the archive holds at most {rows} paths; lower k or raise the archive capacity")
    member_ok = valid(archive)
    if exclude is not None:
        member_ok &= jnp.arange(rows) != exclude
    gaps = distance(path, archive.paths).astype(jnp.float32)
    nearest = -jax.lax.top_k(jnp.where(member_ok, -gaps, -jnp.inf), k)[0]  # ascending, [k]
    count = jnp.minimum(member_ok.sum(), k)
    return jnp.sum(jnp.where(jnp.arange(k) < count, nearest, 0.0)) / jnp.maximum(count, 1)


# ----------------------------------------------------------------------------------------------
# Encodings of a path as reals, for EN²AS's ES: ``encode(path)`` and ``decode(x)``, over every
# cell key and any leading dimensions. ``decode`` maps every real vector to a valid path.

@dataclasses.dataclass(frozen=True)
class PerEdgeEncoding:
    """One real per edge, the operation index (NAS-Bench-201); ``decode`` rounds it and clips it to
    ``[0, num_ops - 1]``, none included (an NB201 edge may hold none)."""

    num_ops: int

    def __post_init__(self):
        _check_int("num_ops", self.num_ops, 2, None, "a cell has at least two operations")

    def encode(self, path: Path) -> dict:
        return {key: value.astype(jnp.float32) for key, value in path.items()}

    def decode(self, x: dict) -> Path:
        return {key: jnp.clip(jnp.round(value), 0, self.num_ops - 1).astype(jnp.int32)
                for key, value in x.items()}


# The intermediate nodes of a DARTS cell: (first edge of the node in DARTS_EDGES, its inputs).
_DARTS_NODES = tuple((DARTS_EDGES.index((0, dst)), dst) for dst in range(2, 6))


@dataclasses.dataclass(frozen=True)
class DartsNodeEncoding:
    """Four reals per intermediate node i = 0..3 (cell node i + 2): ``[input1, op1, input2, op2]``,
    16 per cell (the EN²AS code's encoding, spec 1.4); ``encode`` writes input1 < input2.

    ``decode``: ops round and clip to ``[1, num_ops - 1]`` (never none, which would leave the node
    one input short; the original code clips to ``[0, 7]``); input1 is the nearest input in
    ``[0, i + 1]``, input2 the nearest one other than input1 (ties to the lower). So when both
    inputs round to one value, input2 moves to the neighbouring input on the side of its real value
    (the only neighbour at the ends of the range), and every vector decodes to a valid path; the
    original code kept the duplicate, one edge carrying both operations.
    """

    num_ops: int = len(DARTS_OPS)

    def __post_init__(self):
        _check_int("num_ops", self.num_ops, 2, None,
                   "a DARTS cell has none and at least one other operation")

    def encode(self, path: Path) -> dict:
        _check_widths(path, len(DARTS_EDGES), "a DARTS path")
        return {key: jnp.concatenate([_encode_node(value[..., start:start + inputs])
                                      for start, inputs in _DARTS_NODES], axis=-1)
                for key, value in path.items()}

    def decode(self, x: dict) -> Path:
        _check_widths(x, 4 * len(_DARTS_NODES), "a DARTS encoding")
        return {key: jnp.concatenate([self._decode_node(value[..., 4 * i:4 * i + 4], inputs)
                                      for i, (_, inputs) in enumerate(_DARTS_NODES)], axis=-1)
                for key, value in x.items()}

    def _decode_node(self, x, inputs: int):
        """``[..., 4]`` -> the node's incoming edges ``int32[..., inputs]``."""
        sources = jnp.arange(inputs)
        first = jnp.argmin(jnp.abs(x[..., :1] - sources), axis=-1)
        is_first = sources == first[..., None]
        second = jnp.argmin(jnp.where(is_first, jnp.inf, jnp.abs(x[..., 2:3] - sources)), axis=-1)
        op1, op2 = (jnp.clip(jnp.round(x[..., j:j + 1]), 1, self.num_ops - 1).astype(jnp.int32)
                    for j in (1, 3))
        return jnp.where(is_first, op1, 0) + jnp.where(sources == second[..., None], op2, 0)


def _check_widths(tree: dict, width: int, what: str) -> None:
    widths = {key: jnp.shape(value)[-1:] for key, value in tree.items()}
    if any(w != (width,) for w in widths.values()):
        raise ValueError(f"{what} has {width} entries per cell key, got the shapes' last "
                         f"dimensions {widths}.")


def _encode_node(edges):
    """A node's incoming edges ``[..., inputs]`` (two not none) -> ``float32[..., 4]``."""
    used = edges != NONE
    first = jnp.argmax(used, axis=-1)
    second = edges.shape[-1] - 1 - jnp.argmax(used[..., ::-1], axis=-1)
    ops = [jnp.take_along_axis(edges, i[..., None], axis=-1)[..., 0] for i in (first, second)]
    return jnp.stack([first, ops[0], second, ops[1]], axis=-1).astype(jnp.float32)


# ----------------------------------------------------------------------------------------------
# EN²AS: the novelty ES (Eqs. 2.5-2.6)

class ESStep(NamedTuple):
    """One ES update: ``member`` = alpha + step_size * ``grad``; ``grad`` =
    ``(1 / (n sigma)) sum_i N_i eps_i`` (Eq. 2.5); ``novelty`` float32[n], the N_i."""

    member: dict
    grad: dict
    novelty: jax.Array


def es_step(key, member: dict, novelty: Callable[[dict], jax.Array], num_perturbations: int,
            sigma: float, step_size) -> ESStep:
    """Eqs. 2.5-2.6: perturb the continuous ``member`` (a pytree) ``num_perturbations`` (n) times
    by ``sigma * eps``, ``eps ~ N(0, I)``, score each with ``novelty`` (one member -> scalar), and
    step along the estimated gradient of ``E[novelty(member + sigma eps)]``."""
    _check_int("num_perturbations (n)", num_perturbations, 1, None,
               "the ES gradient needs at least one perturbation (EN²AS uses 10)")
    _check_positive("sigma", sigma, "the perturbation scale must be > 0 (EN²AS uses 1)")
    leaves, treedef = jax.tree.flatten(member)
    eps = treedef.unflatten([
        jax.random.normal(leaf_key, (num_perturbations,) + jnp.shape(leaf), jnp.result_type(leaf))
        for leaf_key, leaf in zip(jax.random.split(key, len(leaves)), leaves)])
    scores = jax.vmap(novelty)(jax.tree.map(lambda x, e: x + sigma * e, member, eps))
    grad = jax.tree.map(lambda e: jnp.tensordot(scores, e, axes=1) / (num_perturbations * sigma),
                        eps)
    return ESStep(jax.tree.map(lambda x, g: x + step_size * g, member, grad), grad, scores)


def en2as_step(key, archive: Archive, index, encoding, distance: Distance, k: int,
               num_perturbations: int, sigma: float, step_size):
    """Eq. 2.6 on member ``index`` of EN²AS's archive of continuous members (rows of ``encoding``).

    Novelty is scored on decoded paths against the archive as it was before the step, without the
    member itself (spec 1.7). Returns ``(archive, path, ESStep)``: the archive with the updated
    member written back, and the path it decodes to, the one to train.
    """
    frozen = Archive(jax.vmap(encoding.decode)(archive.paths), archive.size)

    def novelty(x):
        return knn_novelty(encoding.decode(x), frozen, k, distance, exclude=index)

    step = es_step(key, member(archive, index), novelty, num_perturbations, sigma, step_size)
    return replace(archive, index, step.member), encoding.decode(step.member), step


# ----------------------------------------------------------------------------------------------
# NSAS: constraint selection (Algorithms 2-3, Eq. 3.4) and Assumptions 1-2. The variants' other
# choices are compositions: RG writes random paths, LoW and LoW-R the previous path (``replace``).

def total_distance(archive: Archive, distance: Distance) -> jax.Array:
    """Eq. 3.4's diversity: the sum of ``distance`` over the pairs of valid members, float32[]."""
    rows = archive.paths
    pairwise = distance(jax.tree.map(lambda r: r[:, None], rows),
                        jax.tree.map(lambda r: r[None, :], rows))
    ok = valid(archive)
    upper = jnp.triu(ok[:, None] & ok[None, :], k=1)
    return jnp.sum(jnp.where(upper, pairwise, 0.0))


def replace_most_similar(archive: Archive, path: Path, distance: Distance):
    """Algorithm 3, line 7: ``path`` in place of the valid member nearest to it (the lowest row
    among ties). Returns ``(archive, index)``. On an empty archive nothing becomes valid."""
    gaps = jnp.where(valid(archive), distance(path, archive.paths), jnp.inf)
    index = jnp.argmin(gaps)
    return replace(archive, index, path), index


def greedy_novelty_replace(key, archive: Archive, recent: Archive, index, num_draws: int, k: int,
                           distance: Distance) -> Archive:
    """Algorithm 2: ``num_draws`` (n) paths drawn uniformly from ``recent``; member ``index`` is
    replaced by a draw whenever the draw is more novel than it (strictly), novelty being
    ``knn_novelty`` against the other members. The others stay fixed, so the sequential rule keeps
    the first draw of highest novelty when that beats the member. n = 0 is the identity."""
    _check_int("num_draws (n)", num_draws, 0, None,
               "Algorithm 2 draws n >= 0 recent paths (0 keeps the member)")
    draws = jax.random.randint(key, (num_draws,), 0, jnp.maximum(recent.size, 1))
    candidates = jax.tree.map(
        lambda current, rows: jnp.concatenate([current[None], rows[draws]]),
        member(archive, index), recent.paths)
    scores = jax.vmap(lambda p: knn_novelty(p, archive, k, distance, exclude=index))(candidates)
    drawable = (jnp.arange(num_draws + 1) == 0) | (recent.size > 0)
    best = jnp.argmax(jnp.where(drawable, scores, -jnp.inf))
    return replace(archive, index, tree_index(candidates, best))


def _covered_edges(constraints: Archive, path: Path) -> dict:
    """``{cell_key: bool[E]}``: the edge is none in ``path`` or holds the same operation in a valid
    constraint (its weights are among the constraints')."""
    ok = valid(constraints)[:, None]
    return {key: (path[key] == NONE) | jnp.any(ok & (rows == path[key]), axis=0)
            for key, rows in constraints.paths.items()}


def covers(constraints: Archive, path: Path) -> jax.Array:
    """Assumption 1, bool[]: on every edge of ``path``, its operation's weights belong to some
    valid constraint."""
    return jnp.all(jnp.concatenate(list(_covered_edges(constraints, path).values())))


def disjoint(constraints: Archive) -> jax.Array:
    """Assumption 2, bool[]: no two valid constraints share an ``(edge, op != none)`` weight (all
    pairs; the thesis writes it for neighbours, ``theta_1 ∩ theta_2 = ... = ∅``)."""
    ok = valid(constraints)
    pairs = ok[:, None] & ok[None, :] & ~jnp.eye(capacity(constraints), dtype=bool)
    shared = sum(jnp.any((rows[:, None] == rows[None, :]) & (rows[None, :] != NONE), axis=-1)
                 for rows in constraints.paths.values())
    return ~jnp.any(pairs & shared)


def complement(path: Path, constraints: Archive, fill: Path, cells: CellEdges) -> Path:
    """NSAS-G's last constraint: ``path``'s nodes that hold an operation no valid constraint covers
    on that edge, and ``fill``'s (e.g. a random path) elsewhere. Adding it to the constraints makes
    ``covers`` true; taking whole nodes keeps a DARTS path valid. NSAS-G: pass the first M - 1
    constraints (``archive._replace(size=M - 1)``) and write the result at row M - 1."""
    cells.check(path)
    cells.check(fill)
    covered = _covered_edges(constraints, path)
    result = {}
    for key, mask in cells.node_masks().items():
        mask = mask.astype(jnp.int32)
        uncovered_nodes = ((~covered[key]).astype(jnp.int32) @ mask) > 0
        result[key] = jnp.where((mask @ uncovered_nodes.astype(jnp.int32)) > 0,
                                path[key], fill[key])
    return result


# ----------------------------------------------------------------------------------------------

def _select(pred, on_true, on_false):
    return jax.tree.map(lambda a, b: jnp.where(pred, a, b), on_true, on_false)


def _check_int(name: str, value, low: int, high: int | None, hint: str) -> None:
    if (isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low
            or (high is not None and value > high)):
        bounds = f"in [{low}, {high}]" if high is not None else f">= {low}"
        raise ValueError(f"{name} must be an integer {bounds}, got {value!r}: {hint}.")


def _check_positive(name: str, value, hint: str) -> None:
    """Checks a Python or numpy number; a traced value passes unchecked."""
    if isinstance(value, numbers.Real) and not value > 0:
        raise ValueError(f"{name} must be > 0, got {value!r}: {hint}.")
