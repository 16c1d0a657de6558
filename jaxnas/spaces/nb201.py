"""The NAS-Bench-201 search space: its supernet and the discrete networks of its genotypes.

Skeleton (Dong & Yang, ICLR 2020): stem conv 3x3 + BN, three stages of ``N`` cells with ``C``,
``2C`` and ``4C`` channels joined by residual reduction blocks, final BN + ReLU, global average
pool, linear classifier. A cell has 4 nodes and 6 edges; node j sums its edges from nodes i < j.
"""

import chex
import flax.linen as nn
import jax.numpy as jnp

from jaxnas.spaces.cells import CellDAG, EdgeSpec
from jaxnas.spaces.genotypes import NB201_EDGES, NB201Genotype
from jaxnas.spaces.ops import NB201_OPS, ReLUConvBN, batch_norm, check_op_names, conv, torch_kernel_init
from jaxnas.spaces.scan_cells import scan_cells


class ResNetBlock(nn.Module):
    """The reduction block between stages: ReLU-conv3x3(stride 2)-BN, ReLU-conv3x3-BN, plus a
    2x2 average-pool + 1x1 conv shortcut. [B, H, W, C_in] -> [B, H/2, W/2, C_out]."""

    C_out: int

    @nn.compact
    def __call__(self, x, train: bool = False):
        y = ReLUConvBN(self.C_out, 3, 2, 1, name="conv_a")(x, train)
        y = ReLUConvBN(self.C_out, 3, 1, 1, name="conv_b")(y, train)
        shortcut = conv(self.C_out, 1, name="downsample")(nn.avg_pool(x, (2, 2), (2, 2)))
        return shortcut + y


class NB201Cell(nn.Module):
    """A 4-node cell: node j sums its edges from nodes i < j; the output is node 3.

    ``edges``: ``(src, dst, ops)`` triples (all six edges in a supernet; the non-``none``
    genes of a genotype in a discrete network).
    """

    edges: tuple[EdgeSpec, ...]
    C: int
    affine: bool = False
    mixed: bool = False
    node_bn: bool = False
    single_path: bool = False

    @nn.compact
    def __call__(self, x, weights=None, train: bool = False):
        """x: [B, H, W, C]; weights: [6, K] per-edge operation weights when mixed (or [6]
        operation indices on a single path)."""
        dag = CellDAG(self.edges, 1, self.C, affine=self.affine, mixed=self.mixed,
                      node_bn=self.node_bn, single_path=self.single_path, name="dag")
        nodes = dag([x], weights, train)
        return nodes.get(3, jnp.zeros_like(x))


class NB201Network(nn.Module):
    """The NB201 macro skeleton around cells of the given per-edge operations.

    Call: ``net.apply(variables, x, arch_weights, train=...)`` with x [B, H, W, 3] and
    ``arch_weights = {"cell": [6, K]}`` (None for a discrete network) -> logits [B, classes].
    ``mixed``: supernet (mixed edges) or discrete network; ``node_bn``: a non-affine batch norm
    after each node's sum; ``single_path``: a supernet whose edges compute only the operation the
    weights choose (``{"cell": [6]}`` operation indices, or one-hot / straight-through [6, K]);
    ``remat``: each cell's activations are recomputed in the backward pass (``nn.remat``) instead
    of stored, for memory-bound runs; ``scan``: a stage's ``N`` cells run as one ``lax.scan``
    (``jaxnas.spaces.scan_cells``), traced and compiled once. Parameter paths are the same for
    every option.
    """

    edges: tuple[EdgeSpec, ...]
    C: int = 16
    N: int = 5
    num_classes: int = 10
    affine: bool = False
    mixed: bool = False
    node_bn: bool = False
    single_path: bool = False
    remat: bool = False
    scan: bool = False

    @nn.compact
    def __call__(self, x, arch_weights=None, train: bool = False):
        chex.assert_rank(x, 4)  # [B, H, W, C]
        weights = None if arch_weights is None else arch_weights["cell"]
        x = conv(self.C, 3, padding=1, name="stem_conv")(x)
        x = batch_norm(train, True, name="stem_bn")(x)
        cell_type = nn.remat(NB201Cell, static_argnums=(3,)) if self.remat else NB201Cell
        for stage in range(3):
            C = self.C * 2**stage
            if stage:
                x = ResNetBlock(C, name=f"reduction_{stage}")(x, train)
            names = tuple(f"stage{stage}_cell{i}" for i in range(self.N))
            if self.scan:
                cell = NB201Cell(self.edges, C, self.affine, self.mixed, self.node_bn,
                                 self.single_path, parent=None)
                x = scan_cells(self, cell, names, x, weights, train=train, remat=self.remat)
                continue
            for name in names:
                cell = cell_type(self.edges, C, self.affine, self.mixed, self.node_bn,
                                 self.single_path, name=name)
                x = cell(x, weights, train)
        x = nn.relu(batch_norm(train, True, name="lastact_bn")(x))
        x = jnp.mean(x, axis=(1, 2))
        return nn.Dense(self.num_classes, kernel_init=torch_kernel_init, name="classifier")(x)


def nb201_supernet(C: int = 16, N: int = 5, num_classes: int = 10,
                   ops: tuple[str, ...] = NB201_OPS, affine: bool = False,
                   node_bn: bool = False, single_path: bool = False,
                   remat: bool = False, scan: bool = False) -> NB201Network:
    """The NB201 supernet: every edge a mixed operation over ``ops``; weights [6, len(ops)]
    (``single_path``: every edge computes only its chosen operation; ``remat``: cells
    rematerialized in the backward pass; ``scan``: a stage's cells as one ``lax.scan``)."""
    check_op_names(ops)
    edges = tuple((src, dst, tuple(ops)) for src, dst in NB201_EDGES)
    return NB201Network(edges, C, N, num_classes, affine, mixed=True, node_bn=node_bn,
                        single_path=single_path, remat=remat, scan=scan)


def nb201_network(genotype: NB201Genotype, C: int = 16, N: int = 5, num_classes: int = 10,
                  affine: bool = True) -> NB201Network:
    """The discrete network of ``genotype``; ``none`` edges are removed."""
    edges = tuple((src, dst, (op,)) for op, (src, dst) in zip(genotype.ops, NB201_EDGES)
                  if op != "none")
    return NB201Network(edges, C, N, num_classes, affine)
