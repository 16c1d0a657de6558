"""The DARTS convolutional search space: its supernet and the discrete networks of its genotypes.

Macro structure (Liu et al., ICLR 2019): a stem (conv 3x3 to 3C + BN on CIFAR; two stride-2 stems
on ImageNet), ``layers`` cells with reduction cells at 1/3 and 2/3 of the depth (doubling the
width), global average pool and a linear classifier; optionally an auxiliary head after the
second reduction cell. A cell preprocesses its two inputs (the outputs of the two previous cells)
to C channels (FactorizedReduce when the previous cell reduced), computes intermediate nodes as
sums of edges from earlier nodes, and outputs the channel concat of the ``concat`` nodes.
"""

import dataclasses

import chex
import flax.linen as nn
import jax.numpy as jnp

from jaxnas.spaces.cells import CellDAG, EdgeSpec
from jaxnas.spaces.genotypes import DARTS_EDGES, DartsGenotype
from jaxnas.spaces.ops import (DARTS_OPS, FactorizedReduce, ReLUConvBN, batch_norm, check_op_names,
                               conv, torch_kernel_init)


@dataclasses.dataclass(frozen=True)
class CellSpec:
    """The static topology of one cell type: ``edges`` are ``(src, dst, ops)`` triples (nodes 0
    and 1 are the cell inputs), ``concat`` the nodes concatenated into the output, ``mixed``
    whether the edges are mixed operations (a supernet cell), ``node_bn`` whether each node's sum
    is followed by a non-affine batch norm, ``single_path`` whether a supernet cell's edges
    compute only their chosen operation, ``scan`` whether its edges of each stride run as one
    ``lax.scan`` (``CellDAG``)."""

    edges: tuple[EdgeSpec, ...]
    concat: tuple[int, ...] = (2, 3, 4, 5)
    mixed: bool = False
    node_bn: bool = False
    single_path: bool = False
    scan: bool = False


def genotype_cell(genotype: DartsGenotype, cell: str) -> CellSpec:
    """The discrete cell ``cell`` ("normal" or "reduce") of ``genotype``; ``none`` genes removed."""
    concat = genotype.normal_concat if cell == "normal" else genotype.reduce_concat
    edges = tuple((src, dst, (op,)) for op, src, dst in genotype.edges(cell) if op != "none")
    return CellSpec(edges, concat)


def reduction_layers(layers: int) -> tuple[int, int]:
    return (layers // 3, 2 * layers // 3)


class DartsCell(nn.Module):
    spec: CellSpec
    C: int
    reduction: bool
    reduction_prev: bool
    affine: bool = True
    pool_bn: bool = False
    drop_path: bool = False
    remat_edges: bool = False

    @nn.compact
    def __call__(self, s0, s1, weights=None, train: bool = False, drop_path_rate=0.0):
        """s0, s1: the two previous cells' outputs; weights: [len(edges), K] when mixed;
        ``remat_edges``: (scanned cells) each edge's activations recomputed in the backward pass.

        Returns [B, H', W', len(concat) * C] with H' = H/2 in a reduction cell.
        """
        if self.reduction_prev:
            s0 = FactorizedReduce(self.C, self.affine, name="preprocess0")(s0, train)
        else:
            s0 = ReLUConvBN(self.C, 1, affine=self.affine, name="preprocess0")(s0, train)
        s1 = ReLUConvBN(self.C, 1, affine=self.affine, name="preprocess1")(s1, train)
        dag = CellDAG(self.spec.edges, 2, self.C, 2 if self.reduction else 1, self.affine,
                      self.pool_bn, self.drop_path, self.spec.mixed, self.spec.node_bn,
                      self.spec.single_path, self.spec.scan, self.remat_edges, name="dag")
        nodes = dag([s0, s1], weights, train, drop_path_rate)
        st = 2 if self.reduction else 1
        zeros = jnp.zeros_like(s1[:, ::st, ::st, :])  # a concat node that no edge reaches
        return jnp.concatenate([nodes.get(i, zeros) for i in self.spec.concat], axis=-1)


class AuxiliaryHead(nn.Module):
    """The auxiliary classifier after the second reduction cell (8x8 input on CIFAR, 14x14 on
    ImageNet): ReLU, avg-pool 5x5, conv 1x1 to 128 + BN + ReLU, conv 2x2 to 768 (+ BN) + ReLU,
    linear. The ImageNet head has no BN after the 2x2 conv, as in the original code."""

    num_classes: int
    imagenet: bool = False

    @nn.compact
    def __call__(self, x, train: bool = False):
        x = nn.relu(x)
        x = nn.avg_pool(x, (5, 5), (2, 2) if self.imagenet else (3, 3), count_include_pad=False)
        x = nn.relu(batch_norm(train, True)(conv(128, 1)(x)))
        x = conv(768, 2)(x)
        if not self.imagenet:
            x = batch_norm(train, True)(x)
        x = nn.relu(x).reshape(x.shape[0], -1)
        return nn.Dense(self.num_classes, kernel_init=torch_kernel_init)(x)


class DartsNetwork(nn.Module):
    """A DARTS-space network: a supernet (mixed edges) or the discrete network of a genotype.

    Call: ``net.apply(variables, x, arch_weights, train=..., drop_path_rate=...)`` with x
    [B, H, W, 3] and ``arch_weights = {"normal": [E, K], "reduce": [E, K]}`` (None for a discrete
    network). Returns logits [B, classes], or ``(logits, aux_logits)`` when the network has an
    auxiliary head and ``train`` is True. Drop-path needs a ``"dropout"`` rng. ``remat``: each
    cell's activations are recomputed in the backward pass (``nn.remat``; each edge's, in its
    scan, when the cells are scanned) instead of stored, for memory-bound runs; parameter paths
    are unchanged.
    """

    normal: CellSpec
    reduce: CellSpec
    C: int = 16
    layers: int = 8
    num_classes: int = 10
    affine: bool = True
    pool_bn: bool = False
    auxiliary: bool = False
    drop_path: bool = False
    imagenet: bool = False
    stem_multiplier: int = 3
    remat: bool = False

    @nn.compact
    def __call__(self, x, arch_weights=None, train: bool = False, drop_path_rate=0.0):
        chex.assert_rank(x, 4)  # [B, H, W, C]
        C = self.C
        if self.imagenet:
            s0 = conv(C // 2, 3, 2, 1, name="stem0_conv0")(x)
            s0 = nn.relu(batch_norm(train, True, name="stem0_bn0")(s0))
            s0 = batch_norm(train, True, name="stem0_bn1")(conv(C, 3, 2, 1, name="stem0_conv1")(s0))
            s1 = conv(C, 3, 2, 1, name="stem1_conv")(nn.relu(s0))
            s1 = batch_norm(train, True, name="stem1_bn")(s1)
            reduction_prev = True
        else:
            s0 = conv(self.stem_multiplier * C, 3, padding=1, name="stem_conv")(x)
            s0 = s1 = batch_norm(train, True, name="stem_bn")(s0)
            reduction_prev = False
        aux_logits = None
        reductions = reduction_layers(self.layers)
        for i in range(self.layers):
            reduction = i in reductions
            C_cell = C * 2 ** sum(i >= r for r in reductions)
            kind = "reduce" if reduction else "normal"
            spec = getattr(self, kind)
            # A scanned cell recomputes each edge in its backward loop; a cell recomputed as a
            # whole (nn.remat) saved no memory on the CPU (BENCHMARKS.md).
            cell_type = (nn.remat(DartsCell, static_argnums=(4,)) if self.remat and not spec.scan
                         else DartsCell)
            cell = cell_type(spec, C_cell, reduction, reduction_prev, self.affine, self.pool_bn,
                             self.drop_path, self.remat and spec.scan, name=f"cell{i}")
            weights = None if arch_weights is None else arch_weights[kind]
            s0, s1 = s1, cell(s0, s1, weights, train, drop_path_rate)
            reduction_prev = reduction
            if self.auxiliary and train and i == reductions[1]:
                aux_logits = AuxiliaryHead(self.num_classes, self.imagenet, name="auxiliary")(
                    s1, train)
        x = jnp.mean(s1, axis=(1, 2))
        logits = nn.Dense(self.num_classes, kernel_init=torch_kernel_init, name="classifier")(x)
        return logits if aux_logits is None else (logits, aux_logits)


def darts_supernet(C: int = 16, layers: int = 8, num_classes: int = 10,
                   ops: tuple[str, ...] = DARTS_OPS,
                   edges: tuple[tuple[int, int], ...] = DARTS_EDGES,
                   auxiliary: bool = False, node_bn: bool = False,
                   drop_path: bool = False, single_path: bool = False,
                   cell_ops: dict | None = None, remat: bool = False,
                   scan: bool = False) -> DartsNetwork:
    """The DARTS search supernet: mixed edges over ``ops``, non-affine BN, BN after pooling
    (``node_bn``: also after each node's sum; ``drop_path``: on every operation but the
    identity, as in DARTS's evaluation network; ``single_path``: every edge computes only its
    chosen operation, arch weights ``{"normal": [E], "reduce": [E]}`` operation indices or
    one-hot / straight-through [E, K]). ``cell_ops`` ``{kind: ((op, ...) per edge)}`` gives
    every edge of each kind its own candidates in place of ``ops``; ``remat``: cells
    rematerialized in the backward pass; ``scan``: a cell's edges of each stride as one
    ``lax.scan``."""
    cells = {}
    for kind in ("normal", "reduce"):
        per_edge = cell_ops[kind] if cell_ops else (tuple(ops),) * len(edges)
        for names in per_edge:
            check_op_names(names)
        cells[kind] = CellSpec(tuple((src, dst, tuple(names))
                                     for (src, dst), names in zip(edges, per_edge, strict=True)),
                               mixed=True, node_bn=node_bn, single_path=single_path,
                               scan=scan)
    return DartsNetwork(cells["normal"], cells["reduce"], C, layers, num_classes, affine=False,
                        pool_bn=True, auxiliary=auxiliary, drop_path=drop_path, remat=remat)


def darts_network(genotype: DartsGenotype, C: int = 36, layers: int = 20, num_classes: int = 10,
                  auxiliary: bool = False, drop_path: bool = False, imagenet: bool = False,
                  affine: bool = True, pool_bn: bool = False) -> DartsNetwork:
    """The discrete network of ``genotype`` (by default the DARTS evaluation network's ops:
    affine BN, no BN after pooling; pass ``affine=False, pool_bn=True`` for search-style ops)."""
    return DartsNetwork(genotype_cell(genotype, "normal"), genotype_cell(genotype, "reduce"), C,
                        layers, num_classes, affine, pool_bn, auxiliary, drop_path, imagenet)
