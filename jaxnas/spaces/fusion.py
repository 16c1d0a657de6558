"""Barriers for XLA's CPU fusion: identities whose value, or whose tangent (and so, transposed,
its cotangent), passes through a conditional.

XLA:CPU fuses a cheap elementwise producer into every consumer, recomputing it in each. In a
supernet's backward pass the cotangent of a cell node is such a producer (a sum of the node's
outgoing edges' input cotangents, each through a ReLU mask, a pooling transpose, a batch norm's
backward...), and each of its consumers (every operation of every edge into the node, times
the mixing weights) recomputes the whole chain, recursively through the cell: a weight gradient
with traced mixing weights read and wrote 2.7x the bytes of the same gradient with constant ones
(NB201 C=8, N=2, batch 16; ``experiments/bench_fusion.py``). A conditional's operand and result
are buffers that no fusion crosses, so the cotangent is computed once. ``lax.optimization_barrier``
would say this directly, but XLA:CPU removes it before fusion.

The predicate is "the value's first element is not NaN", which XLA cannot fold; the other branch
gives NaN: a NaN value makes the whole derivative NaN (where without the barrier it would reach
the elements it touches), so a NaN is never hidden. The barrier is applied
on the CPU backend only (``jax.default_backend()`` at trace time): a conditional costs a
device-to-host copy of its predicate on a GPU, whose fusion has its own limits on duplication.
"""

import jax
import jax.numpy as jnp


@jax.custom_jvp
def _barrier(x):
    return x


@_barrier.defjvp
def _barrier_jvp(primals, tangents):
    (x,), (t,) = primals, tangents
    first = x.reshape(-1)[0]
    # Both branches are linear in t, so the transposed (reverse-mode) rule is the same conditional.
    return x, jax.lax.cond(first == first, lambda t: t, lambda t: t * jnp.nan, t)


def derivative_barrier(x: jax.Array) -> jax.Array:
    """``x`` unchanged; on the CPU backend its derivatives (forward and reverse, any order) are
    computed once into a buffer instead of inside each consumer's fusion."""
    return _barrier(x) if jax.default_backend() == "cpu" else x


def index_barrier(x: jax.Array) -> jax.Array:
    """``x``, an array of indices (non-negative integers), unchanged; on the CPU backend computed
    once into a buffer instead of inside each consumer's fusion (the predicate, "the first
    element is not negative", is true for indices and cannot be folded)."""
    if not jnp.issubdtype(x.dtype, jnp.integer):
        raise TypeError(f"index_barrier takes integer arrays, got {x.dtype}")
    if jax.default_backend() != "cpu":
        return x
    return jax.lax.cond(x.reshape(-1)[0] >= 0, lambda x: x, jnp.zeros_like, x)
