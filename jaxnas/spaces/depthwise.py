"""Depthwise convolutions on CPU as dense ones with a block-diagonal kernel, or as taps.

XLA's CPU backend runs a depthwise convolution (``feature_group_count`` equal to the channel
count, kernel [kh, kw, 1, C]) and its two gradients 1.3-8x slower than a dense convolution
with the same kernel spread over a block-diagonal [kh, kw, C, C] one, although the dense one
does C times the arithmetic (BENCHMARKS.md, "Depthwise convolutions on CPU"). ``as_dense``
rewrites depthwise convolutions that way on CPU. The rewrite is one multiply by an identity
matrix in front of the convolution, so its derivatives to every order are ordinary JAX (the
kernel's gradient is the diagonal of the dense kernel's gradient) and the program stays as
small as it was. ``taps`` computes one instead as kh * kw multiply-adds of strided input
slices: the depthwise arithmetic only, but a program kh * kw times as large, so it is what
``jaxnas.spaces.canonical_conv`` lowers its depthwise convolutions to on the CPU, inside the
loop bodies that hold each operation once (the edges of a scanned cell), and not where a
supernet is unrolled. Accelerators keep their native depthwise convolutions.
"""

import jax
import jax.numpy as jnp
from jax import lax

NHWC = ("NHWC", "HWIO", "NHWC")


def is_nhwc(lhs, rhs, dimension_numbers) -> bool:
    """Whether a convolution's ``dimension_numbers`` lay out ``lhs`` as NHWC, ``rhs`` as HWIO
    and the output as NHWC."""
    spec = lax.conv_dimension_numbers(lhs.shape, rhs.shape, dimension_numbers)
    return spec == lax.conv_dimension_numbers(lhs.shape, rhs.shape, NHWC)


def is_depthwise(lhs, rhs, feature_group_count: int) -> bool:
    """Whether an NHWC convolution of ``lhs`` [B, H, W, C] with ``rhs`` [kh, kw, I, O] is
    depthwise: one group per channel (C > 1), I = 1 and O = C."""
    channels = lhs.shape[-1]
    return feature_group_count == channels == rhs.shape[-1] > 1 and rhs.shape[2] == 1


def dense_is_faster() -> bool:
    """Whether depthwise convolutions should run as dense ones (or as taps in a loop body): on
    the CPU backend."""
    return jax.default_backend() == "cpu"


def as_dense(conv_general_dilated):
    """Wraps a ``lax.conv_general_dilated``-like function so that depthwise NHWC convolutions
    (inputs [B, H, W, C], HWIO kernels [kh, kw, 1, C], ``feature_group_count=C``) reach it as
    dense ones with the kernel ``w[:, :, 0, :] * eye(C)`` [kh, kw, C, C]; every other form
    passes through unchanged."""

    def conv(lhs, rhs, window_strides, padding, lhs_dilation=None, rhs_dilation=None,
             dimension_numbers=None, feature_group_count=1, **kwargs):
        if (is_nhwc(lhs, rhs, dimension_numbers)
                and is_depthwise(lhs, rhs, feature_group_count)):
            rhs = rhs * jnp.eye(lhs.shape[-1], dtype=rhs.dtype)
            feature_group_count = 1
        return conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation,
                                    rhs_dilation, dimension_numbers, feature_group_count,
                                    **kwargs)

    return conv


def window_slices(x, window, strides, padding, dilation=(1, 1), fill=0.0):
    """The kh * kw strided slices of x [B, H, W, C], padded by ``padding`` ((lo, hi), (lo, hi);
    entries may be negative) with ``fill``, that a (dilated) window reads for each output, in
    row-major window order -> list of [B, Ho, Wo, C]."""
    (kh, kw), (s0, s1), (d0, d1) = window, strides, dilation
    x = lax.pad(x, jnp.asarray(fill, x.dtype),
                ((0, 0, 0), (*padding[0], 0), (*padding[1], 0), (0, 0, 0)))
    ho = (x.shape[1] - d0 * (kh - 1) - 1) // s0 + 1
    wo = (x.shape[2] - d1 * (kw - 1) - 1) // s1 + 1
    return [lax.slice(x, (0, d0 * p, d1 * q, 0),
                      (x.shape[0], d0 * p + s0 * (ho - 1) + 1, d1 * q + s1 * (wo - 1) + 1,
                       x.shape[3]), (1, s0, s1, 1))
            for p in range(kh) for q in range(kw)]


def taps(x, w, strides, padding, dilation):
    """The depthwise convolution of x [B, H, W, C] with w [kh, kw, 1, C]:
    ``y[b, i, j, c] = sum_{p, q} x_pad[b, s0 i + d0 p, s1 j + d1 q, c] * w[p, q, 0, c]``, one
    strided slice of the padded input per tap. padding: ((lo, hi), (lo, hi)), entries may be
    negative. -> [B, Ho, Wo, C]."""
    kh, kw = w.shape[:2]
    slices = window_slices(x, (kh, kw), strides, padding, dilation)
    terms = [xs * w[t // kw, t % kw, 0] for t, xs in enumerate(slices)]
    return sum(terms[1:], terms[0])
