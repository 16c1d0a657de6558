"""How the cells of a search space meet the graph VAE: one ``CellCodec`` per space.

A codec fixes the DAGs the VAE reads and writes (``num_vertices``, ``num_ops`` operation types),
turns path cells (int [E], one op index per edge as in ``jaxnas.spaces.paths``) into DAGs for
training, names what keeps a decoded DAG from being a cell, and, inside a jitted search step,
reads a decoding back as a valid path cell and spreads the decoder's operation distributions over
that cell's edges (the soft part of E²NAS's straight-through weights).

- ``NB201Codec``: the 8-vertex DAGs of ``jaxnas.vae.dag``; every decoding is a cell (the edges
  are fixed, the operation vertex ``1 + e`` is edge e).
- ``DartsCodec``: the 11-vertex DAGs of ``jaxnas.vae.darts_dag``. A decoding need not be a cell,
  so ``decoded_cell`` reads each node's two operation vertices as the pair of distinct sources
  whose DAG edges agree most with the decoded in-edges (ties: the decoder's log-odds), each with
  its most likely operation. A decoding that is a cell comes back unchanged. E²NAS-R's depth
  counts the edges of ``DARTS_CHAIN``.
"""

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxnas.spaces.genotypes import DARTS_EDGES, NB201_EDGES, NB201Genotype
from jaxnas.spaces.ops import DARTS_OPS, NB201_OPS
from jaxnas.vae import darts_dag
from jaxnas.vae.dag import (NB201_NUM_VERTICES, Dag, nb201_dags, nb201_op_indices,
                            nb201_problem)
from jaxnas.vae.model import DagProbs

_LOGIT_CLIP = 20.0  # |log-odds| of an edge; 2 sources x 20 x _TIE_BREAK < 1 agreeing edge
_TIE_BREAK = 1e-2


class CellCodec:
    """Class attributes: name: the space's name; ops: the space's operations (what path cells
    index); num_vertices, num_ops: the VAE's DAG sizes; columns: int [num_dag_ops], the op index in
    ``ops`` of each DAG operation type (types ``num_dag_ops..num_ops-1``, if any, are no
    operations); unused_op: the op index the edges a cell does not use hold (None: a cell uses
    every edge); chain: bool [N, N], E²NAS-R's depth edges, or None where the depth is
    constant."""

    name: str = ""
    ops: tuple = ()
    num_vertices: int = 0
    num_ops: int = 0
    columns: tuple = ()
    unused_op: int | None = None
    chain: Any = None

    def dags(self, cells) -> Dag:
        """Path cells int [C, E] -> their DAGs, numpy (types [C, N], adj [C, N, N])."""
        raise NotImplementedError

    def problem(self, dag: Dag) -> str | None:
        """What keeps one DAG from being a cell, or None."""
        raise NotImplementedError

    def describe(self, cell) -> str:
        """One path cell int [E] as text, for reports."""
        raise NotImplementedError

    def decoded_cell(self, dag: Dag, probs: DagProbs) -> tuple[jax.Array, jax.Array]:
        """A decoding (``DVAE.generate``: DAGs [B, ...] and the decoder's distributions along
        them) -> ``(cells, vertices)``, int32 [B, E] each: the valid path cell it reads as and,
        per edge, the DAG vertex that holds its operation (-1 on an unused edge). Jit-able."""
        raise NotImplementedError

    def soft_weights(self, probs: DagProbs, vertices) -> jax.Array:
        """The decoder's operation distributions [B, E, len(ops)] on the edges of a decoded cell
        (``vertices`` from ``decoded_cell``), zero on unused edges and on ops the DAGs lack."""
        vertices = jnp.asarray(vertices)
        types = jnp.take_along_axis(probs.types, jnp.maximum(vertices, 0)[..., None], axis=1)
        soft = jnp.zeros(vertices.shape + (len(self.ops),), probs.types.dtype)
        soft = soft.at[..., np.asarray(self.columns)].set(types[..., :len(self.columns)])
        return jnp.where(vertices[..., None] >= 0, soft, 0.0)


class NB201Codec(CellCodec):
    name = "nb201"
    ops = NB201_OPS
    num_vertices = NB201_NUM_VERTICES
    num_ops = len(NB201_OPS)
    columns = tuple(range(len(NB201_OPS)))

    def dags(self, cells) -> Dag:
        return nb201_dags(np.asarray(cells))

    def problem(self, dag: Dag) -> str | None:
        return nb201_problem(dag)

    def describe(self, cell) -> str:
        return NB201Genotype(tuple(self.ops[i] for i in np.asarray(cell))).arch_str

    def all_cells(self) -> np.ndarray:
        """All 15,625 cells int32 [15625, 6], the last edge fastest (``nb201_cells`` order)."""
        return nb201_op_indices()

    def decoded_cell(self, dag: Dag, probs: DagProbs):
        del probs
        cells = jnp.asarray(dag.types)[:, 1:-1].astype(jnp.int32)
        return cells, jnp.broadcast_to(jnp.arange(1, len(NB201_EDGES) + 1, dtype=jnp.int32),
                                       cells.shape)


class DartsCodec(CellCodec):
    name = "darts"
    ops = DARTS_OPS
    num_vertices = darts_dag.DARTS_NUM_VERTICES
    num_ops = darts_dag.DARTS_DAG_NUM_OPS
    columns = tuple(DARTS_OPS.index(op) for op in darts_dag.DARTS_DAG_OPS)
    unused_op = DARTS_OPS.index("none")
    chain = darts_dag.DARTS_CHAIN

    def dags(self, cells) -> Dag:
        return darts_dag.darts_dags(cells, self.ops)

    def problem(self, dag: Dag) -> str | None:
        return darts_dag.darts_problem(dag)

    def describe(self, cell) -> str:
        cell = np.asarray(cell)
        nodes = [[f"{self.ops[cell[e]]}~{src}" for e, (src, d) in enumerate(DARTS_EDGES)
                  if d == dst and self.ops[cell[e]] != "none"] for dst in range(2, 6)]
        return "|" + "|".join(" ".join(node) for node in nodes) + "|"

    def sample_cells(self, key, count: int) -> np.ndarray:
        """``count`` cells int32 [count, 14] drawn uniformly."""
        return darts_dag.sample_darts_cells(key, count, self.ops)

    def decoded_cell(self, dag: Dag, probs: DagProbs):
        types, adj = jnp.asarray(dag.types), jnp.asarray(dag.adj, jnp.float32)
        p = jnp.clip(probs.adj, 1e-9, 1 - 1e-9)
        log_odds = jnp.clip(jnp.log(p) - jnp.log1p(-p), -_LOGIT_CLIP, _LOGIT_CLIP)
        num_dag_ops = len(self.columns)
        # A vertex's operation: its decoded type when that is an operation, else the likeliest.
        likeliest = jnp.argmax(probs.types[..., :num_dag_ops], -1)
        op_type = jnp.where(types < num_dag_ops, types, likeliest)
        batch = types.shape[0]
        cells = jnp.full((batch, len(DARTS_EDGES)), self.unused_op, jnp.int32)
        vertices = jnp.full((batch, len(DARTS_EDGES)), -1, jnp.int32)
        rows = jnp.arange(batch)
        for node in range(2, 6):
            pair_vertices = darts_dag.op_vertices(node)
            # score[b, k, s]: the node's k-th operation vertex reading source s.
            score = jnp.stack([jnp.stack([_source_score(adj, log_odds, v, s) for s in range(node)],
                                         -1) for v in pair_vertices], 1)
            pair = score[:, 0, :, None] + score[:, 1, None, :]  # [B, s_a, s_b]
            pair = jnp.where(np.eye(node, dtype=bool), -jnp.inf, pair)
            best = jnp.argmax(pair.reshape(batch, -1), -1)
            node_edges = jnp.asarray([DARTS_EDGES.index((s, node)) for s in range(node)])
            for v, source in zip(pair_vertices, (best // node, best % node)):
                op = jnp.asarray(self.columns, jnp.int32)[op_type[:, v]]
                cells = cells.at[rows, node_edges[source]].set(op)
                vertices = vertices.at[rows, node_edges[source]].set(v)
        return cells, vertices


def _source_score(adj, log_odds, vertex: int, source: int):
    """How well the decided in-edges of ``vertex`` (adj [B, N, N], 0/1) match those of an
    operation reading ``source`` in a cell (``darts_dag.source_vertices``) -> [B]: the number of
    agreeing edges, ties broken by the decoder's log-odds [B, N, N] of the expected ones."""
    expected = np.zeros(adj.shape[-1], bool)
    expected[list(darts_dag.source_vertices(source))] = True
    decided = np.arange(adj.shape[-1]) < vertex
    agree = jnp.sum(jnp.where(decided, (adj[:, :, vertex] > 0.5) == expected, False), -1)
    return agree + _TIE_BREAK * jnp.sum(jnp.where(expected, log_odds[:, :, vertex], 0.0), -1)


def codec_for(space_name: str) -> CellCodec:
    """The codec of the space named ``space_name`` ("nb201" or "darts")."""
    codecs = {"nb201": NB201Codec(), "darts": DartsCodec()}
    if space_name not in codecs:
        raise ValueError(f"The graph VAE encodes cells of the spaces {sorted(codecs)}, got "
                         f"{space_name!r}.")
    return codecs[space_name]
