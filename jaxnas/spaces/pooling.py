"""Pooling in the forms XLA's CPU backend runs fastest: each window reduced along the rows,
then along the columns; max pooling's derivatives as taps.

XLA:CPU runs a 3 x 3 window as two one-dimensional ``reduce-window`` ops (whose transposes are
one-dimensional too) 3-8 times faster than as one (``BENCHMARKS.md``): ``avg_pool`` sums each
window that way and divides by its in-bounds count; ``max_pool`` takes its maxima that way
(exactly XLA's, a maximum has no rounding).

XLA differentiates max pooling through ``select-and-scatter``, which its CPU backend expands into
a variadic ``reduce-window`` carrying the arg-max's indices, one int32 array per dimension, and
a ``scatter``: about 0.75 s of the 5.2 s gradient of the DARTS supernet (``BENCHMARKS.md``).
``max_pool`` defines the tangent itself: the tangent of each window's first maximal element
(row-major within the window, the one XLA's gradient picks on ties), read from the window's
strided slices of the padded input (as the taps of ``jaxnas.spaces.depthwise``) through a
one-byte index of that element. The tangent map is linear, so JAX transposes it into the
gradient (pads of masked output gradients), and every higher derivative is ordinary JAX too.
Values and derivatives equal XLA's (tested, ties too).
"""

import functools
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxnas.spaces.depthwise import window_slices
from jaxnas.spaces.fusion import index_barrier


def cpu_forms_are_faster() -> bool:
    """Whether the search operations pool with this module's ``max_pool`` and ``avg_pool`` (on
    the CPU, where they were measured) instead of flax's."""
    return jax.default_backend() == "cpu"


def _rows_then_columns(x, init: float, reduce, window, strides, padding):
    """``lax.reduce_window`` of x [B, H, W, C] over the (kh, kw) ``window`` with ``strides`` and
    ``padding`` (of ``init``) as two one-dimensional windows: along the rows, then along the
    columns."""
    for axis in (1, 2):
        size, stride, pads = [1] * 4, [1] * 4, [(0, 0)] * 4
        size[axis], stride[axis] = window[axis - 1], strides[axis - 1]
        pads[axis] = tuple(padding[axis - 1])
        x = lax.reduce_window(x, np.array(init, x.dtype), reduce, size, stride, pads)
    return x


def _in_bounds(n: int, size: int, stride: int, pad) -> np.ndarray:
    """[n_out] how many of each window's ``size`` positions lie inside an axis of ``n`` padded by
    ``pad`` (lo, hi)."""
    starts = np.arange(0, n + pad[0] + pad[1] - size + 1, stride) - pad[0]
    return np.minimum(starts + size, n) - np.maximum(starts, 0)


def avg_pool(x, window: Sequence[int], strides: Sequence[int], padding):
    """Average pooling of x [B, H, W, C] over ``window`` (kh, kw) with ``strides`` and zero
    ``padding`` ((lo, hi), (lo, hi)) left out of each window's count, as
    ``flax.linen.avg_pool(..., count_include_pad=False)`` up to float rounding ->
    [B, Ho, Wo, C]: the window sums along the rows, then along the columns, divided by the
    in-bounds counts."""
    counts = np.outer(*(_in_bounds(n, window[i], strides[i], padding[i])
                        for i, n in enumerate(x.shape[1:3])))
    sums = _rows_then_columns(x, 0.0, lax.add, window, strides, padding)
    return sums / jnp.asarray(counts[None, :, :, None], x.dtype)


@functools.partial(jax.custom_jvp, nondiff_argnums=(1, 2, 3))
def max_pool(x, window: Sequence[int], strides: Sequence[int], padding):
    """Max pooling of x [B, H, W, C] over ``window`` (kh, kw) with ``strides`` and ``padding``
    ((lo, hi), (lo, hi)) of -inf, as ``flax.linen.max_pool`` (exactly) -> [B, Ho, Wo, C]."""
    return _rows_then_columns(x, -np.inf, lax.max, window, strides, padding)


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
