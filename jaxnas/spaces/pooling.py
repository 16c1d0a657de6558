"""Max pooling whose derivatives run as taps on the CPU.

XLA differentiates max pooling through ``select-and-scatter``, which its CPU backend expands into
a variadic ``reduce-window`` carrying the arg-max's indices, one int32 array per dimension, and
a ``scatter``: about 0.75 s of the 5.2 s gradient of the DARTS supernet (``BENCHMARKS.md``).
``max_pool`` keeps XLA's forward ``reduce-window`` and defines the tangent itself: the tangent of
each window's first maximal element (row-major within the window, the one XLA's gradient picks
on ties), read from the window's strided slices of the padded input (as the taps of
``jaxnas.spaces.depthwise``) through a one-byte index of that element. The tangent map is
linear, so JAX transposes it into the gradient (pads of masked output gradients), and every
higher derivative is ordinary JAX too. Values and derivatives equal XLA's (tested, ties too).
"""

import functools
from typing import Sequence

import jax
import jax.numpy as jnp
from jax import lax

from jaxnas.spaces.depthwise import window_slices
from jaxnas.spaces.fusion import index_barrier


def taps_are_faster() -> bool:
    """Whether max pooling should be differentiated through ``max_pool``'s taps: on the CPU."""
    return jax.default_backend() == "cpu"


@functools.partial(jax.custom_jvp, nondiff_argnums=(1, 2, 3))
def max_pool(x, window: Sequence[int], strides: Sequence[int], padding):
    """Max pooling of x [B, H, W, C] over ``window`` (kh, kw) with ``strides`` and ``padding``
    ((lo, hi), (lo, hi)) of -inf, as ``flax.linen.max_pool`` -> [B, Ho, Wo, C]."""
    return lax.reduce_window(x, -jnp.inf, lax.max, (1, *window, 1), (1, *strides, 1),
                             ((0, 0), *padding, (0, 0)))


@max_pool.defjvp
def _max_pool_jvp(window, strides, padding, primals, tangents):
    """The tangent of each window's first maximal element (row-major within the window)."""
    (x,), (dx,) = primals, tangents
    y = max_pool(x, window, strides, padding)
    slices = window_slices(x, window, strides, padding, fill=-jnp.inf)
    index = jnp.int8 if len(slices) <= 128 else jnp.int32
    first = jnp.full(y.shape, len(slices) - 1, index)  # [B, Ho, Wo, C], a window index
    for t in reversed(range(len(slices))):
        first = jnp.where(slices[t] == y, index(t), first)
    first = index_barrier(first)  # computed once, not inside each of the kh * kw consumers
    terms = [jnp.where(first == t, dx_t, jnp.zeros((), dx.dtype))
             for t, dx_t in enumerate(window_slices(dx, window, strides, padding))]
    return y, sum(terms[1:], terms[0])
