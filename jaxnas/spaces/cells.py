"""The cell DAG shared by both search spaces, with single-operation or mixed edges.

A cell has ``num_inputs`` input nodes and intermediate nodes; node j is the sum of its incoming
edges ``(src, j, ops)``. Every edge is a module ``edge_{dst}_{src}`` holding its operations under
their own names (``edge_3_1/nor_conv_3x3/...``): a supernet edge mixes all candidates with weights
``sum_k w[e, k] * op_k(x)``, a discrete edge holds one. A discrete network therefore has the same
parameter paths as the supernet it was derived from, and inherits its weights by selection.

(Vectorizing the edges that leave one node with ``jax.vmap`` turns every convolution into a
grouped one, which XLA compiled 1.6x and ran 5x slower on CPU for the 8-cell DARTS supernet; so
each edge is its own module.)
"""

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxnas.spaces.fusion import derivative_barrier
from jaxnas.spaces.ops import batch_norm, canonical_convs, make_op

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
        nodes = {i: derivative_barrier(x) for i, x in enumerate(inputs)}
        for node in sorted({dst for _, dst, _ in self.edges}):
            terms = []
            for e, (src, dst, ops) in enumerate(self.edges):
                if dst != node:
                    continue
                name = edge_name(src, dst)
                if [(s, d) for s, d, _ in self.edges[:e]].count((src, dst)):
                    name += f"_{e}"  # several genes on one edge (hand-written genotypes)
                stride = self.input_stride if src < self.num_inputs else 1
                edge = Edge(ops, self.C, stride, self.affine, self.pool_bn, self.drop_path,
                            self.single_path, name=name)
                x = nodes.get(src)
                if x is None:  # a node no edge reaches is zero
                    x = jnp.zeros_like(inputs[-1][:, :: self.input_stride, :: self.input_stride])
                terms.append(edge(x, weights[e] if self.mixed else None, train, drop_path_rate))
            nodes[node] = sum(terms[1:], terms[0])
            if self.node_bn:
                nodes[node] = batch_norm(train, False, name=f"node{node}_bn")(nodes[node])
            nodes[node] = derivative_barrier(nodes[node])
        return nodes
