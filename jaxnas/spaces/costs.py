"""Jit-able cost tables: the parameter count and multiply-adds of a path's evaluation network.

A path ``{kind: int32[E]}`` (one operation index per edge of each cell kind, any of them
``none``) names a discrete network: ``space.network`` of the genotype whose edges hold those
operations, ``none`` edges removed, any number of inputs per node. Its cost is a sum

    cost(path) = base + sum_kind sum_e edges[kind][e, path[kind][e]]

because an operation's parameters and multiply-adds depend only on its name, width, stride and
input size, never on the other edges. ``base`` is the skeleton (stem, the cells' preprocessing,
reduction blocks, classifier: the network whose every edge is ``none``); ``edges[kind][e, k]``
is operation ``k`` on edge ``e`` summed over all cells of that kind.

What is counted, as TND-NAS measures Params (spec 000, A7): the evaluation network
``space.network(genotype, num_classes)`` of the space given, in eval mode, so without the
auxiliary head; its ``params`` collection (convolution kernels, affine batch-norm scales and
biases, the classifier's kernel and bias), not the batch statistics. Multiply-adds follow
``jaxnas.spaces.flops`` (convolutions and dense layers only), per example. For TND-NAS pass the
evaluation space, ``DartsSpace(C=24, layers=20, ops=...)``, not the search supernet's.

The table is built on the host once (``cost_tables``: about a second of tracing for 20
cells, nothing compiled); ``CostTable.cost`` is a gather and a sum, for ``[E]`` paths or
``[M, E]`` batches. Sums of integers are exact in float32 below 2**24 (16.7M: every parameter
count of interest); larger multiply-add counts round to float32 (relative error 6e-8) unless
``dtype`` is float64 under ``jax.enable_x64``.
"""

import dataclasses
import functools
from typing import Mapping, NamedTuple, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxnas.spaces.cells import Edge, edge_name
from jaxnas.spaces.flops import module_cost
from jaxnas.spaces.genotypes import DartsGenotype, NB201Genotype
from jaxnas.spaces.ops import make_op
from jaxnas.spaces.space import DartsSpace, NB201Space


class CostTable(NamedTuple):
    """``base``: float[]; ``edges``: ``{kind: float[E, K]}``, the cost of operation k on edge e
    summed over the cells of that kind."""

    base: jax.Array
    edges: dict

    def cost(self, path: Mapping) -> jax.Array:
        """The cost of ``path`` ``{kind: int[..., E]}`` (leading batch axes allowed): float[...]."""
        return self.base + path_sum(self.edges, path)


def path_sum(per_edge: Mapping, path: Mapping) -> jax.Array:
    """``sum_kind sum_e per_edge[kind][e, path[kind][..., e]]``: ``per_edge`` ``{kind: [E, K]}``,
    ``path`` ``{kind: int[..., E]}`` -> float[...]. A path's cost, or its log-probability under
    per-edge log-softmax logits."""
    return sum(jnp.sum(per_edge[kind][jnp.arange(per_edge[kind].shape[0]), path[kind]], axis=-1)
               for kind in sorted(per_edge))


def cost_tables(space: DartsSpace | NB201Space, num_classes: int,
                image_shape: Sequence[int] = (32, 32, 3),
                dtype=jnp.float32) -> dict[str, CostTable]:
    """``{"params": CostTable, "macs": CostTable}`` of the evaluation networks of ``space``'s
    paths (``space.network``; a path indexes each edge's candidates, ``space.ops``, or
    ``space.cell_ops()`` in a DARTS space with per-cell or per-edge candidates) on
    ``image_shape`` [H, W, C] images; ``edges[kind]`` has shape
    ``space.arch_shapes()[kind]``."""
    if isinstance(space, DartsSpace) and not space.uniform:
        cell_ops = space.cell_ops()
        names = tuple(dict.fromkeys(op for per_edge in cell_ops.values()
                                    for ops in per_edge for op in ops))
        full = dataclasses.replace(space, ops=names, reduce_ops=(), edge_ops=())
        return {name: restrict(table, names, cell_ops)
                for name, table in cost_tables(full, num_classes, image_shape, dtype).items()}
    x_shape = (1,) + tuple(image_shape)
    base = module_cost(space.network(_empty_genotype(space), num_classes), x_shape, train=False)
    tables = {kind: np.zeros((2,) + shape, np.int64)
              for kind, shape in space.arch_shapes().items()}
    for kind, e, C, stride, edge_shape in _edge_inputs(space, num_classes, x_shape):
        for k, op in enumerate(space.ops):
            tables[kind][:, e, k] += _op_cost(op, C, stride, edge_shape)
    return {name: CostTable(jnp.asarray(base[i], dtype),
                            {kind: jnp.asarray(t[i], dtype) for kind, t in tables.items()})
            for i, name in enumerate(("params", "macs"))}


@functools.cache
def cached_cost_tables(space, num_classes: int, image_shape: tuple) -> dict[str, CostTable]:
    """``cost_tables`` built once per (space, classes, image shape), concrete even when first
    asked for while a step is traced (a cached tracer would leak into the next trace)."""
    with jax.ensure_compile_time_eval():
        return cost_tables(space, num_classes, tuple(image_shape))


def restrict(table: CostTable, ops: Sequence[str], edge_ops: Mapping) -> CostTable:
    """The table of a supernet whose edges hold subsets of ``ops`` (the table's operations):
    ``edge_ops`` ``{kind: ((op, ...) per edge)}``, the same number per edge; paths then index
    each edge's own tuple."""
    if set(edge_ops) != set(table.edges):
        raise ValueError(f"edge_ops has the cell kinds {sorted(edge_ops)}, the cost table "
                         f"{sorted(table.edges)}.")
    edges = {}
    for kind, per_edge in edge_ops.items():
        unknown = sorted({op for names in per_edge for op in names} - set(ops))
        if unknown:
            raise ValueError(f"Operation(s) {unknown} of the {kind} cell are not in the cost "
                             f"table's operations {tuple(ops)}; build the table over all of them.")
        counts = [len(names) for names in per_edge]
        if len(set(counts)) != 1 or len(per_edge) != table.edges[kind].shape[0]:
            raise ValueError(f"edge_ops of the {kind} cell hold {counts} operations; it needs "
                             f"the same number on each of its {table.edges[kind].shape[0]} edges.")
        ids = np.array([[ops.index(op) for op in names] for names in per_edge], np.int32)
        edges[kind] = jnp.take_along_axis(table.edges[kind], jnp.asarray(ids), axis=1)
    return CostTable(table.base, edges)


def _empty_genotype(space):
    """The genotype whose every edge is ``none``: the skeleton alone."""
    if isinstance(space, NB201Space):
        return NB201Genotype(("none",) * len(space.edge_list))
    if isinstance(space, DartsSpace):
        concat = (2, 3, 4, 5)
        return DartsGenotype((), concat, (), concat)
    raise TypeError(f"Cost tables are defined for NB201Space and DartsSpace, got "
                    f"{type(space).__name__}.")


def _edge_inputs(space, num_classes, x_shape):
    """``(kind, edge index, width, stride, input shape)`` of every edge of every cell, read by
    tracing the supernet of ``space`` with ``none`` on every edge (shapes do not depend on the
    operations, and ``none`` builds none)."""
    empty = dataclasses.replace(space, ops=("none",))
    index = {edge_name(src, dst): e for e, (src, dst) in enumerate(space.edge_list)}
    found = []

    def record(next_fun, args, kwargs, context):
        module = context.module
        if isinstance(module, Edge) and context.method_name == "__call__":
            found.append((space.cell_kind(module.path[0]), index[module.name], module.C,
                          module.stride, tuple(args[0].shape)))
        return next_fun(*args, **kwargs)

    weights = {kind: jnp.ones(shape) for kind, shape in empty.arch_shapes().items()}
    net = empty.supernet(num_classes)
    x = jax.ShapeDtypeStruct(x_shape, jnp.float32)
    with nn.intercept_methods(record):
        jax.eval_shape(lambda x: net.init(jax.random.key(0), x, weights, train=False), x)
    return found


@functools.cache
def _op_cost(op, C, stride, x_shape) -> tuple[int, int]:
    """``module_cost`` of ``op`` as the evaluation network builds it (affine batch norm, no batch
    norm after pooling)."""
    return module_cost(make_op(op, C, stride, affine=True), x_shape, train=False)
