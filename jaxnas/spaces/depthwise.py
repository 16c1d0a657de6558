"""Depthwise convolutions run on CPU as dense ones with a block-diagonal kernel.

XLA's CPU backend runs a depthwise convolution (``feature_group_count`` equal to the channel
count, kernel [kh, kw, 1, C]) and its two gradients 1.3-8x slower than a dense convolution
with the same kernel spread over a block-diagonal [kh, kw, C, C] one, although the dense one
does C times the arithmetic (BENCHMARKS.md, "Depthwise convolutions on CPU"). ``as_dense``
rewrites depthwise convolutions that way on CPU. The rewrite is one multiply by an identity
matrix in front of the convolution, so its derivatives to every order are ordinary JAX (the
kernel's gradient is the diagonal of the dense kernel's gradient) and the program stays as
small as it was. Accelerators keep their native depthwise convolutions.
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
    """Whether depthwise convolutions should run as dense ones: on the CPU backend."""
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
