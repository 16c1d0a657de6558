"""Cells as DAGs with operations on the vertices, the form the graph VAE reads and writes.

A ``Dag`` lists its vertices in a topological order: vertex 0 is the cell's input (type
``START``), the last vertex its output (type ``END``), and the vertices between are operations
(types ``0..K-1``, indices into the space's operation list). ``adj[u, v]`` marks an edge
``u -> v``; in a topological order only ``u < v`` can hold.

A NAS-Bench-201 cell becomes the 8-vertex DAG whose vertex ``1 + e`` is the operation on edge
``e`` of ``NB201_EDGES``: an operation vertex feeds every operation that reads the node it writes,
the input feeds the operations that read node 0, and the operations that write node 3 feed the
output. Every cell has the same edges (``NB201_DAG_ADJ``); only the operation types differ, and
``none`` stays a vertex, so the map is one-to-one over all 15,625 cells.
"""

import itertools
from typing import Any, NamedTuple

import numpy as np

from jaxnas.spaces.genotypes import NB201_EDGES, NB201Genotype
from jaxnas.spaces.ops import NB201_OPS


class Dag(NamedTuple):
    """A batch of DAGs (or one, without the leading axes).

    types: int [..., N], the vertex types (operations ``0..K-1``, ``K`` start, ``K+1`` end);
    adj: bool [..., N, N], ``adj[..., u, v]`` for an edge ``u -> v`` (``u < v``).
    """

    types: Any
    adj: Any


NB201_START = len(NB201_OPS)
NB201_END = len(NB201_OPS) + 1
NB201_NUM_VERTICES = len(NB201_EDGES) + 2
NB201_NUM_CELLS = len(NB201_OPS) ** len(NB201_EDGES)


def _nb201_adjacency() -> np.ndarray:
    """The edges of every NB201 cell's DAG: bool [8, 8]."""
    adj = np.zeros((NB201_NUM_VERTICES,) * 2, bool)
    end, output_node = NB201_NUM_VERTICES - 1, NB201_EDGES[-1][1]
    for e, (src, dst) in enumerate(NB201_EDGES):
        v = 1 + e
        adj[0, v] = src == 0
        adj[v, end] = dst == output_node
        for f, (next_src, _) in enumerate(NB201_EDGES):
            adj[v, 1 + f] = next_src == dst
    return adj


NB201_DAG_ADJ = _nb201_adjacency()
NB201_DAG_ADJ.flags.writeable = False


def nb201_op_indices() -> np.ndarray:
    """The op indices int32 [15625, 6] of all NB201 cells, in ``nb201_cells`` order."""
    rows = itertools.product(range(len(NB201_OPS)), repeat=len(NB201_EDGES))
    return np.array(list(rows), np.int32)


def nb201_dags(op_indices: np.ndarray | None = None) -> Dag:
    """The DAGs of NB201 cells given as op indices int [C, 6] (``NB201_EDGES`` order; default:
    all 15,625 cells in ``nb201_cells`` order): types int32 [C, 8], adj bool [C, 8, 8]
    (numpy)."""
    if op_indices is None:
        op_indices = nb201_op_indices()
    count = len(op_indices)
    types = np.concatenate([np.full((count, 1), NB201_START), op_indices,
                            np.full((count, 1), NB201_END)], axis=1).astype(np.int32)
    return Dag(types, np.broadcast_to(NB201_DAG_ADJ, (count,) + NB201_DAG_ADJ.shape).copy())


def nb201_to_dag(cell: NB201Genotype | str) -> Dag:
    """An NB201 genotype or arch string -> its DAG: types int32 [8], adj bool [8, 8]."""
    if isinstance(cell, str):
        cell = NB201Genotype.from_arch_str(cell)
    dags = nb201_dags(np.array([[NB201_OPS.index(op) for op in cell.ops]]))
    return Dag(dags.types[0], dags.adj[0])


def nb201_cells() -> list[NB201Genotype]:
    """All 15,625 NB201 cells, the ops of the six edges running through ``NB201_OPS`` with the
    last edge fastest (the row order of ``nb201_dags``)."""
    return [NB201Genotype(ops) for ops in itertools.product(NB201_OPS, repeat=len(NB201_EDGES))]


def nb201_problem(dag: Dag) -> str | None:
    """What keeps one DAG (types [8], adj [8, 8]) from being an NB201 cell, or None if it is
    one."""
    types, adj = np.asarray(dag.types), np.asarray(dag.adj)
    shape = (NB201_NUM_VERTICES,)
    if types.shape != shape or adj.shape != shape * 2:
        return (f"it has types of shape {types.shape} and adj of shape {adj.shape}, not "
                f"{shape} and {shape * 2}")
    if types[0] != NB201_START or types[-1] != NB201_END:
        return (f"its first and last vertex types are {types[0]} and {types[-1]}, not start "
                f"({NB201_START}) and end ({NB201_END})")
    ops = types[1:-1]
    if not np.all((ops >= 0) & (ops < len(NB201_OPS))):
        return f"its operation vertices have types {ops.tolist()}, not all in 0..{NB201_START - 1}"
    wrong = np.argwhere(adj.astype(bool) != NB201_DAG_ADJ)
    if len(wrong):
        listed = ", ".join(f"{u}->{v} {'extra' if adj[u, v] else 'missing'}"
                           for u, v in wrong[:4])
        return f"its edges differ from the NB201 cell's in {len(wrong)} places ({listed})"
    return None


def dag_to_nb201(dag: Dag) -> NB201Genotype:
    """One DAG (types [8], adj [8, 8], the vertex order of ``nb201_to_dag``) -> its NB201
    genotype; a ValueError says why a DAG is not an NB201 cell."""
    problem = nb201_problem(dag)
    if problem is not None:
        raise ValueError(f"The DAG (types {np.asarray(dag.types).tolist()}) is not an NB201 "
                         f"cell: {problem}. Decode it from a VAE trained on NB201 cells, or "
                         "build it with nb201_to_dag.")
    return NB201Genotype(tuple(NB201_OPS[t] for t in np.asarray(dag.types)[1:-1]))
