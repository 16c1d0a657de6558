"""DARTS-space cells as DAGs with operations on the vertices, the form E²NAS's graph VAE reads and
writes for the DARTS space (``dag.py`` has the NB201 form and the ``Dag`` batch).

A DARTS cell (one ``"normal"`` or ``"reduce"`` entry of a path, ``jaxnas.spaces.paths``) holds an
op index for each of the 14 edges of ``DARTS_EDGES``: node ``n = 2..5`` sums two operations, on
edges from two distinct earlier nodes (``0`` is the cell input c_{k-2}, ``1`` the input c_{k-1});
the other edges hold ``none``. Its DAG has 11 vertices, in this order:

- 0: the start (type ``DARTS_START``), c_{k-2};
- 1: c_{k-1}, of type ``DARTS_INPUT``;
- ``2 + 2(n-2)`` and ``3 + 2(n-2)``: the two operations of node n (types ``0..6``, indices into
  ``DARTS_DAG_OPS``, the ops of ``DARTS_OPS`` other than ``none``), the one that reads the smaller
  source first, so that each cell has one DAG and the map is one-to-one;
- 10: the end (type ``DARTS_END``).

Edges: ``0 -> 1`` always: c_{k-1} is the previous cell's output, computed from c_{k-2} (the
input of that cell), so the edge is a true data dependency, and it puts c_{k-1} in the DAG's
single-source form. An operation of node n that reads source s has the in-edges ``0 -> v`` for
s = 0, ``1 -> v`` for s = 1, and one from each of node s's two operations for s >= 2 (node s is
their sum). The end is fed by the sinks, the vertices 0..9 without an out-edge, as the DVAE
decoder feeds it: a DARTS cell concatenates all four nodes, so these edges say nothing the others
do not. (Vertex 1 would be a sink if no node read c_{k-1}, but node 2 reads both inputs in
every cell; vertex 0 never is, for its edge to 1.)

The DVAE of this form has ``num_ops=DARTS_DAG_NUM_OPS`` (8: the 7 operations and the input type,
which the decoder chooses for vertex 1 like an operation), ``num_vertices=DARTS_NUM_VERTICES``
and ``positions=True``: two nodes that no later node reads have the same edges whichever is
which, so only the vertices' positions tell such a cell from its twin with the two swapped.
``darts_problem`` says what keeps a decoded DAG from being a cell; ``DARTS_CHAIN`` marks the
edges E²NAS-R's depth counts (``jaxnas.vae.depth.chain_depth``).
"""

import functools

import jax
import numpy as np

from jaxnas.spaces.genotypes import DARTS_EDGES
from jaxnas.spaces.ops import DARTS_OPS
from jaxnas.spaces.paths import sample_path
from jaxnas.spaces.space import DartsSpace
from jaxnas.vae.dag import Dag

DARTS_DAG_OPS = tuple(op for op in DARTS_OPS if op != "none")
DARTS_INPUT = len(DARTS_DAG_OPS)
DARTS_DAG_NUM_OPS = DARTS_INPUT + 1
DARTS_START = DARTS_DAG_NUM_OPS
DARTS_END = DARTS_DAG_NUM_OPS + 1

_NODES = tuple(sorted({dst for _, dst in DARTS_EDGES}))  # (2, 3, 4, 5)
_NUM_INPUTS = _NODES[0]  # c_{k-2}, c_{k-1}
DARTS_NUM_VERTICES = 2 + 2 * len(_NODES) + 1
_END_VERTEX = DARTS_NUM_VERTICES - 1
# The edges into each node (indices into DARTS_EDGES), in DARTS_EDGES order (ascending source).
_NODE_EDGES = tuple(np.array([e for e, (_, dst) in enumerate(DARTS_EDGES) if dst == n])
                    for n in _NODES)
_EDGE_SOURCES = np.array([src for src, _ in DARTS_EDGES])


def op_vertices(n: int) -> tuple[int, int]:
    """The two operation vertices of node n (2..5), the one reading the smaller source first."""
    first = 2 + 2 * (n - _NODES[0])
    return first, first + 1


def source_vertices(s: int) -> tuple[int, ...]:
    """The vertices an operation reading source s (0..4: a cell input or a node) has in-edges
    from: ``(s,)`` for the inputs 0 and 1, node s's two operation vertices for s >= 2."""
    return (s,) if s < _NUM_INPUTS else op_vertices(s)


# _SOURCE_IN_EDGES[s]: bool [N], the in-edges of an operation vertex that reads source s.
_SOURCE_IN_EDGES = np.array([np.isin(np.arange(DARTS_NUM_VERTICES), source_vertices(s))
                             for s in range(_NODES[-1])])
# The source of operation vertices of node n, by their sorted in-edges.
_SOURCE_BY_IN_EDGES = {n: {source_vertices(s): s for s in range(n)} for n in _NODES}


def _darts_chain() -> np.ndarray:
    """E²NAS-R's chain connections (Eq. 4.13), one DAG edge each: bool [11, 11]."""
    chain = np.zeros((DARTS_NUM_VERTICES,) * 2, bool)
    for n in _NODES:
        # One edge per operation of node n that reads node n-1: from c_{k-1} itself for n = 2,
        # else from the first of node n-1's two operations (both feed a reader).
        chain[source_vertices(n - 1)[0], list(op_vertices(n))] = True
    return chain


DARTS_CHAIN = _darts_chain()
DARTS_CHAIN.flags.writeable = False


def _none_index(ops: tuple[str, ...]) -> int:
    if "none" not in ops:
        raise ValueError(f"ops={ops} lacks 'none', which a DARTS path cell puts on the edges a "
                         f"node does not use; pass the ops of the space the cells come from "
                         f"(with 'none').")
    return ops.index("none")


def _path_sources(cells, ops: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Path cells int [C, 14] -> (sources, ops) int [C, 4, 2]: each node's two sources in
    ascending order and the op indices (into ``ops``) on their edges; a ValueError names the first
    defect of a cell that is not a valid path cell."""
    cells = np.asarray(cells)
    num_edges = len(DARTS_EDGES)
    if cells.ndim != 2 or cells.shape[1] != num_edges:
        raise ValueError(f"DARTS path cells must be an int array [C, {num_edges}] (one op index "
                         f"per edge of DARTS_EDGES), got shape {cells.shape}; pass one cell to "
                         f"darts_to_dag, or path['normal'] / path['reduce'], not the path dict.")
    if cells.dtype.kind not in "iu":
        raise ValueError(f"DARTS path cells must hold integer op indices, got dtype "
                         f"{cells.dtype}.")
    none = _none_index(ops)
    bad = np.argwhere((cells < 0) | (cells >= len(ops)))
    if len(bad):
        row, edge = bad[0]
        raise ValueError(f"Cell {row} holds {cells[row, edge]} on edge {edge} "
                         f"{DARTS_EDGES[edge]}, not an index into ops (0..{len(ops) - 1}); "
                         f"pass the ops of the space the cells come from.")
    used = cells != none
    count = len(cells)
    sources = np.zeros((count, len(_NODES), 2), np.int64)
    op_indices = np.zeros((count, len(_NODES), 2), np.int64)
    rows = np.arange(count)
    for k, (n, edges) in enumerate(zip(_NODES, _NODE_EDGES)):
        node_used = used[:, edges]
        wrong = np.flatnonzero(node_used.sum(1) != 2)
        if len(wrong):
            row = wrong[0]
            raise ValueError(f"Cell {row} (ops {cells[row].tolist()}) uses "
                             f"{int(node_used[row].sum())} of the edges into node {n}, not 2: a "
                             f"DARTS path cell puts an op other than 'none' (index {none}) on "
                             f"exactly 2 of each node's incoming edges.")
        first = np.argmax(node_used, axis=1)
        last = len(edges) - 1 - np.argmax(node_used[:, ::-1], axis=1)
        for i, pick in enumerate((first, last)):
            sources[:, k, i] = _EDGE_SOURCES[edges[pick]]
            op_indices[:, k, i] = cells[rows, edges[pick]]
    return sources, op_indices


def darts_dags(cells, ops=DARTS_OPS) -> Dag:
    """Path cells int [C, 14] (op indices into ``ops`` on the edges of ``DARTS_EDGES``) -> their
    DAGs: types int32 [C, 11], adj bool [C, 11, 11] (numpy). A ValueError names the first defect of
    a cell that is not a valid path cell."""
    ops = tuple(ops)
    sources, op_indices = _path_sources(cells, ops)
    to_type = np.array([DARTS_DAG_OPS.index(op) if op in DARTS_DAG_OPS else -1 for op in ops])
    op_types = to_type[op_indices]
    unknown = np.argwhere(op_types < 0)
    if len(unknown):
        row, k, i = unknown[0]
        raise ValueError(f"Cell {row} puts {ops[op_indices[row, k, i]]!r} on an edge into node "
                         f"{_NODES[k]}; the DAG form has the operations {DARTS_DAG_OPS} only.")
    count = len(sources)
    types = np.empty((count, DARTS_NUM_VERTICES), np.int32)
    types[:, 0], types[:, 1], types[:, _END_VERTEX] = DARTS_START, DARTS_INPUT, DARTS_END
    types[:, 2:_END_VERTEX] = op_types.reshape(count, -1)
    adj = np.zeros((count, DARTS_NUM_VERTICES, DARTS_NUM_VERTICES), bool)
    adj[:, 0, 1] = True
    # Operation vertex 2 + j reads sources[:, j // 2, j % 2]: column 2 + j is its in-edges.
    adj[:, :, 2:_END_VERTEX] = np.moveaxis(_SOURCE_IN_EDGES[sources.reshape(count, -1)], 1, 2)
    adj[:, :_END_VERTEX, _END_VERTEX] = ~adj[:, :_END_VERTEX, :_END_VERTEX].any(axis=2)
    return Dag(types, adj)


def darts_to_dag(cell, ops=DARTS_OPS) -> Dag:
    """One path cell int [14] -> its DAG: types int32 [11], adj bool [11, 11]."""
    cell = np.asarray(cell)
    if cell.shape != (len(DARTS_EDGES),):
        raise ValueError(f"darts_to_dag takes one DARTS path cell int [{len(DARTS_EDGES)}], got "
                         f"shape {cell.shape}; use darts_dags for a batch [C, "
                         f"{len(DARTS_EDGES)}].")
    dags = darts_dags(cell[None], ops)
    return Dag(dags.types[0], dags.adj[0])


def _read_dag(dag: Dag) -> tuple[str | None, np.ndarray | None]:
    """(problem, None) for a DAG that is not a cell, else (None, sources int [4, 2])."""
    types, adj = np.asarray(dag.types), np.asarray(dag.adj)
    shape = (DARTS_NUM_VERTICES,)
    if types.shape != shape or adj.shape != shape * 2:
        return (f"it has types of shape {types.shape} and adj of shape {adj.shape}, not "
                f"{shape} and {shape * 2}"), None
    if types.dtype.kind not in "iu":
        return f"its types have dtype {types.dtype}, not an integer dtype", None
    if not np.all((adj == 0) | (adj == 1)):
        return "its adjacency holds values other than 0 and 1 (False and True)", None
    adj = adj.astype(bool)
    expected = {0: DARTS_START, 1: DARTS_INPUT, _END_VERTEX: DARTS_END}
    for v, kind in ((0, "start"), (1, "input c_{k-1}"), (_END_VERTEX, "end")):
        if types[v] != expected[v]:
            return (f"vertex {v} has type {types[v]}, not the {kind} type ({expected[v]})"), None
    op_types = types[2:_END_VERTEX]
    if not np.all((op_types >= 0) & (op_types < len(DARTS_DAG_OPS))):
        return (f"its operation vertices 2..{_END_VERTEX - 1} have types {op_types.tolist()}, "
                f"not all in 0..{len(DARTS_DAG_OPS) - 1}"), None
    into_start = np.flatnonzero(adj[:, 0]).tolist()
    if into_start:
        return f"the start vertex 0 has in-edges from {into_start}; it has none", None
    into_input = np.flatnonzero(adj[:, 1]).tolist()
    if into_input != [0]:
        missing = "" if 0 in into_input else " (the edge 0->1 is missing)"
        return (f"vertex 1 (c_{{k-1}}) has in-edges from {into_input}, not from vertex 0 "
                f"alone{missing}"), None
    backward = np.argwhere(np.tril(adj))
    if len(backward):
        listed = ", ".join(f"{u}->{v}" for u, v in backward[:4])
        return (f"it has {len(backward)} edges u->v with u >= v ({listed}), against the "
                f"topological order"), None
    sources = np.zeros((len(_NODES), 2), np.int64)
    for k, n in enumerate(_NODES):
        for i, v in enumerate(op_vertices(n)):
            into = tuple(np.flatnonzero(adj[:, v]).tolist())
            source = _SOURCE_BY_IN_EDGES[n].get(into)
            if source is None:
                allowed = ", ".join(f"{list(vs)} (source {s})"
                                    for vs, s in _SOURCE_BY_IN_EDGES[n].items())
                return (f"operation vertex {v} of node {n} has in-edges from {list(into)}, none "
                        f"of the sets node {n} may read: {allowed}"), None
            sources[k, i] = source
        a, b = op_vertices(n)
        if sources[k, 0] == sources[k, 1]:
            return (f"the operation vertices {a} and {b} of node {n} both read source "
                    f"{sources[k, 0]}; a node reads two distinct sources"), None
        if sources[k, 0] > sources[k, 1]:
            return (f"the operation vertices {a} and {b} of node {n} read sources "
                    f"{sources[k, 0]} and {sources[k, 1]}, not in ascending order (the vertex "
                    f"that reads the smaller source comes first)"), None
    sinks = np.flatnonzero(~adj[:_END_VERTEX, :_END_VERTEX].any(axis=1)).tolist()
    into_end = np.flatnonzero(adj[:, _END_VERTEX]).tolist()
    if into_end != sinks:
        return (f"the end vertex {_END_VERTEX} has in-edges from {into_end}, not from the "
                f"vertices without an out-edge (the sinks {sinks})"), None
    return None, sources


def darts_problem(dag: Dag) -> str | None:
    """What keeps one DAG (types [11], adj [11, 11]) from being a DARTS cell in this module's
    form, or None if it is one."""
    return _read_dag(dag)[0]


def dag_to_darts(dag: Dag, ops=DARTS_OPS) -> np.ndarray:
    """One DAG (types [11], adj [11, 11], the form of ``darts_to_dag``) -> its path cell int32
    [14] (op indices into ``ops``); a ValueError says why a DAG is not a DARTS cell."""
    ops = tuple(ops)
    problem, sources = _read_dag(dag)
    if problem is not None:
        raise ValueError(f"The DAG (types {np.asarray(dag.types).tolist()}) is not a DARTS "
                         f"cell: {problem}. Decode it from a VAE trained on DARTS cells, or "
                         f"build it with darts_to_dag.")
    cell = np.full(len(DARTS_EDGES), _none_index(ops), np.int32)
    op_types = np.asarray(dag.types)[2:_END_VERTEX].reshape(len(_NODES), 2)
    for k, n in enumerate(_NODES):
        for i in range(2):
            op = DARTS_DAG_OPS[op_types[k, i]]
            if op not in ops:
                raise ValueError(f"The DAG puts {op!r} on vertex {op_vertices(n)[i]}, which "
                                 f"ops={ops} lacks; pass the ops of the space to write the cell "
                                 f"in.")
            cell[DARTS_EDGES.index((int(sources[k, i]), n))] = ops.index(op)
    return cell


def darts_depth(cells, ops=DARTS_OPS) -> np.ndarray:
    """The depth of path cells int [C, 14] (E²NAS-R, Eq. 4.13): the number of nodes n = 2..5
    that read node n-1 (c_{k-1} for n = 2, so every cell has depth >= 1): int [C], 1..4. It
    equals ``chain_depth(adj, DARTS_CHAIN)`` of the cells' DAGs."""
    sources, _ = _path_sources(cells, tuple(ops))
    previous = np.asarray(_NODES)[None, :, None] - 1
    return np.sum(np.any(sources == previous, axis=2), axis=1)


_SAMPLE_CHUNK = 1 << 14


@functools.lru_cache(maxsize=None)
def _sampler(space: DartsSpace):
    """The jitted sampler of a chunk of "normal" cells: keys [K] -> int32 [K, 14]."""
    return jax.jit(jax.vmap(lambda key: sample_path(space, key)["normal"]))


def sample_darts_cells(key, count: int, ops=DARTS_OPS) -> np.ndarray:
    """``count`` path cells drawn uniformly from the valid DARTS cells with ``ops`` (the
    ``"normal"`` cell of ``jaxnas.spaces.paths.sample_path`` for the keys
    ``jax.random.split(key, count)``): int32 [count, 14], numpy. Drawn in chunks of 16,384."""
    if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count < 0:
        raise ValueError(f"count must be an integer >= 0, got {count!r}.")
    sample = _sampler(DartsSpace(ops=tuple(ops)))
    if count == 0:
        return np.zeros((0, len(DARTS_EDGES)), np.int32)
    keys = jax.random.split(key, count)
    chunk = min(count, _SAMPLE_CHUNK)
    out = []
    for start in range(0, count, chunk):
        # Pad the last chunk with the last key, so every chunk has one shape (one compilation).
        rows = np.minimum(np.arange(start, start + chunk), count - 1)
        out.append(np.asarray(sample(keys[rows]))[:count - start])
    return np.concatenate(out).astype(np.int32)
