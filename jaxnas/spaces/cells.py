"""The cell DAG shared by both search spaces, with single-operation or mixed edges.

A cell has ``num_inputs`` input nodes and intermediate nodes; node j is the sum of its incoming
edges ``(src, j, ops)``. Every edge is a module ``edge_{dst}_{src}`` holding its operations under
their own names (``edge_3_1/nor_conv_3x3/...``): a supernet edge mixes all candidates with weights
``sum_k w[e, k] * op_k(x)``, a discrete edge holds one. A discrete network therefore has the same
parameter paths as the supernet it was derived from, and inherits its weights by selection.

(Vectorizing the edges that leave one node with ``jax.vmap`` turns every convolution into a
grouped one, which XLA compiled 1.6x and ran 5x slower on CPU for the 8-cell DARTS supernet; so
each edge is its own module. A supernet cell may instead run its edges of one stride as a
``lax.scan`` over their stacked variables, the same modules traced once: ``scan``.)
"""

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxnas.spaces.fusion import derivative_barrier
from jaxnas.spaces.ops import batch_norm, canonical_convs, make_op
from jaxnas.spaces.scan_edges import scan_edges

EdgeSpec = tuple[int, int, tuple[str, ...]]  # (src, dst, candidate operations)


def drop_path(x, rate, key):
    """Zeroes whole examples of ``x`` [B, ...] with probability ``rate`` and rescales the rest."""
    keep = 1.0 - rate
    mask = jax.random.bernoulli(key, keep, (x.shape[0],) + (1,) * (x.ndim - 1))
    return jnp.where(mask, x / keep, jnp.zeros_like(x))


def edge_name(src: int, dst: int) -> str:
    return f"edge_{dst}_{src}"


class Edge(nn.Module):
    """One edge: a single operation, a mixed operation over ``ops`` when given weights, or (with
    ``single_path``) the one operation that the weights choose, computed alone."""

    ops: tuple[str, ...]
    C: int
    stride: int = 1
    affine: bool = True
    pool_bn: bool = False
    drop_path: bool = False
    single_path: bool = False

    @nn.compact
    def __call__(self, x, weights=None, train: bool = False, drop_path_rate=0.0):
        """x: [B, H, W, C]; weights: [len(ops)] or None (single op). -> [B, H/s, W/s, C].

        Mixed: ``sum_k weights[k] * op_k(x)``; ``none`` is skipped, it adds zero whatever its
        weight. Single path: ``weights`` is an integer operation index (scalar), or weights [K]
        whose argmax is the operation: one-hot, or straight-through (GDAS); the edge computes
        ``w[i] * op_i(x) + sum_{k != i} w[k]`` with i the argmax, as GDAS's code does: the value
        is ``op_i(x)`` for one-hot weights and every weight gets a gradient. Drop-path (when
        enabled) applies to every operation but the identity.
        """
        if weights is None and len(self.ops) != 1:
            raise ValueError(f"Edge with operations {self.ops} needs weights; only a "
                             "single-operation edge can be called without them.")
        if self.single_path:
            return self._single_path(x, weights, train, drop_path_rate)
        terms = []
        for i, name in enumerate(self.ops):
            if name == "none":
                continue
            y = self._op(name, x, train, drop_path_rate)
            terms.append(y if weights is None else weights[i] * y)
        if not terms:
            return jnp.zeros_like(x[:, :: self.stride, :: self.stride, :])
        return sum(terms[1:], terms[0])

    def _op(self, name, x, train, drop_path_rate):
        y = make_op(name, self.C, self.stride, self.affine, self.pool_bn)(x, train)
        if self.drop_path and train and not (name == "skip_connect" and self.stride == 1):
            y = drop_path(y, drop_path_rate, self.make_rng("dropout"))
        return y

    def _single_path(self, x, weights, train, drop_path_rate):
        """Runs only the chosen operation (``nn.switch``); every operation's variables exist
        (created at initialization), the others' batch statistics are left untouched."""
        if self.is_initializing():
            for name in self.ops:
                self._op(name, x, train, drop_path_rate)

        def branch(name):
            def run(module, x):
                with canonical_convs():
                    return module._op(name, x, train, drop_path_rate)
            return run

        branches = [branch(name) for name in self.ops]
        if jnp.ndim(weights) == 0:
            return nn.switch(weights, branches, self, x)
        chex.assert_shape(weights, (len(self.ops),))
        index = jnp.argmax(weights)
        chosen = weights[index]
        return chosen * nn.switch(index, branches, self, x) + (jnp.sum(weights) - chosen)


class CellDAG(nn.Module):
    """The nodes of a cell.

    Attributes:
      edges: ``(src, dst, ops)`` per edge.
      num_inputs: nodes ``0 .. num_inputs-1`` are the inputs.
      input_stride: stride of the edges that leave an input node (2 in a reduction cell).
      mixed: every edge is a mixed operation weighted by the call's ``weights``.
      node_bn: a non-affine batch norm after each node's sum (``node{j}_bn``; constrained
        DARTS's CRB, where the operation weights of a node no longer sum to 1).
      single_path: (with ``mixed``) each edge computes only the operation its weights choose;
        the weights are then integer operation indices [len(edges)] or one-hot (or
        straight-through) weights [len(edges), K].
      scan: (with ``mixed``, every edge holding the same operations, no ``node_bn``,
        ``single_path`` or ``drop_path``) the edges of each stride run as one ``lax.scan``
        (``jaxnas.spaces.scan_edges``): the same variables, values and derivatives, a program
        with one edge per stride instead of every edge.
      remat: (with ``scan``) each edge's activations are recomputed in the backward pass.
    """

    edges: tuple[EdgeSpec, ...]
    num_inputs: int
    C: int
    input_stride: int = 1
    affine: bool = True
    pool_bn: bool = False
    drop_path: bool = False
    mixed: bool = False
    node_bn: bool = False
    single_path: bool = False
    scan: bool = False
    remat: bool = False

    @nn.compact
    def __call__(self, inputs, weights=None, train: bool = False, drop_path_rate=0.0):
        """inputs: ``num_inputs`` arrays [B, H, W, C]; weights: [len(edges), K] when mixed.

        Returns ``{node: [B, H', W', C]}`` for the inputs and every node some edge reaches.
        Every node's derivative passes a ``derivative_barrier`` (computed once, not inside
        each of its consumers: see ``jaxnas.spaces.fusion``).
        """
        if self.mixed and weights is None:
            raise ValueError("A supernet cell needs architecture weights [num_edges, num_ops].")
        if self.mixed:  # at trace time: the weights' shape, a common mistake, named early
            shape = (len(self.edges),) + ((len(self.edges[0][2]),) if jnp.ndim(weights) > 1
                                          or not self.single_path else ())
            chex.assert_shape(weights, shape)
        if self.scan and not self.is_initializing():
            return self._scanned(inputs, weights, train)
        nodes = {i: derivative_barrier(x) for i, x in enumerate(inputs)}
        names = self._edge_names()
        for node in sorted({dst for _, dst, _ in self.edges}):
            terms = []
            for e, (src, dst, ops) in enumerate(self.edges):
                if dst != node:
                    continue
                edge = Edge(ops, self.C, self._stride(src), self.affine, self.pool_bn,
                            self.drop_path, self.single_path, name=names[e])
                x = nodes.get(src)
                if x is None:  # a node no edge reaches is zero
                    x = jnp.zeros_like(inputs[-1][:, :: self.input_stride, :: self.input_stride])
                terms.append(edge(x, weights[e] if self.mixed else None, train, drop_path_rate))
            nodes[node] = sum(terms[1:], terms[0])
            if self.node_bn:
                nodes[node] = batch_norm(train, False, name=f"node{node}_bn")(nodes[node])
            nodes[node] = derivative_barrier(nodes[node])
        return nodes

    def _edge_names(self) -> list[str]:
        """``edge_{dst}_{src}`` per edge, ``_{e}`` appended to a repeated pair (several genes on
        one edge in a hand-written genotype)."""
        pairs = [(src, dst) for src, dst, _ in self.edges]
        return [edge_name(src, dst) + (f"_{e}" if pairs[:e].count((src, dst)) else "")
                for e, (src, dst) in enumerate(pairs)]

    def _stride(self, src: int) -> int:
        return self.input_stride if src < self.num_inputs else 1

    def _scanned(self, inputs, weights, train):
        """The nodes, the edges of each stride run as one scan (``scan_edges``): with stride 1
        everywhere one scan over a buffer of every node, inputs included; in a reduction cell
        first the strided edges from the inputs, then the others, into a buffer of the
        intermediate nodes. Edges run in the order of their destinations."""
        if not self.mixed or self.single_path or self.node_bn or self.drop_path or len(
                {ops for _, _, ops in self.edges}) != 1:
            raise ValueError("A scanned cell needs mixed edges holding the same operations, "
                             "without node_bn, single_path or drop_path.")
        n_in, names = self.num_inputs, self._edge_names()
        order = sorted(range(len(self.edges)), key=lambda e: self.edges[e][1])
        ops = self.edges[0][2]
        reached = sorted({dst for _, dst, _ in self.edges})
        zeros = [jnp.zeros_like(inputs[-1][:, :: self.input_stride, :: self.input_stride])] * (
            max(reached) + 1 - n_in)  # the intermediate nodes before any edge
        if self.input_stride == 1:
            runs, offset = [(order, None)], 0
            buffer = jnp.stack(list(inputs) + zeros)
        else:
            runs = [([e for e in order if self.edges[e][0] < n_in], jnp.stack(inputs)),
                    ([e for e in order if self.edges[e][0] >= n_in], None)]
            offset, buffer = n_in, jnp.stack(zeros)
        for run, source in runs:
            if not run:
                continue
            stride = self._stride(self.edges[run[0]][0])
            edge = Edge(ops, self.C, stride, self.affine, self.pool_bn, parent=None)
            srcs = [self.edges[e][0] - (0 if source is not None else offset) for e in run]
            dsts = [self.edges[e][1] - offset for e in run]
            buffer = scan_edges(self, edge, tuple(names[e] for e in run), srcs, dsts,
                                weights[np.array(run)], buffer, source, train=train,
                                remat=self.remat)
        nodes = dict(enumerate(inputs))
        nodes.update({node: buffer[node - offset] for node in reached})
        return nodes
