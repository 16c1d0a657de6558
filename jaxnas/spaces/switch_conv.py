"""A 2-D convolution whose gradients are themselves plain forward convolutions.

XLA's CPU backend runs the convolutions of a gradient (the input gradient, a transposed
convolution, and the kernel gradient, a convolution over the batch) up to 50x slower when they
sit inside a conditional (``lax.switch``) than at the top level of a program; forward
convolutions in NHWC/HWIO form run at full speed in both places. A single-path supernet runs each
edge's operation inside a ``lax.switch``, so it uses this convolution, whose custom VJP computes:

- the input gradient as a forward convolution of the stride-dilated output gradient with the
  spatially flipped, in/out-swapped kernel;
- the kernel gradient as a forward convolution of the input, with the batch as its channels,
  against the output gradient as the kernel (dense), or as a sum over kernel taps of strided
  input slices times the output gradient (depthwise).

Both equal the native gradients up to float rounding (tested). Limitation: a ``custom_vjp``
function has no forward-mode derivative, so Hessian-vector products (forward over reverse) do not
pass through it; the single-path strategies are first order.
"""

import functools

import jax
import jax.numpy as jnp
from jax import lax

from jaxnas.spaces.depthwise import NHWC, is_depthwise, is_nhwc


def conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation=None,
                         rhs_dilation=None, dimension_numbers=None, feature_group_count=1,
                         precision=None, **kwargs):
    """Drop-in for ``lax.conv_general_dilated`` (as ``nn.Conv(conv_general_dilated=...)``): NHWC
    inputs [B, H, W, C], HWIO kernels [kh, kw, C / groups, O], explicit padding, dense or
    depthwise; other forms fall through to ``lax.conv_general_dilated``."""
    groups = feature_group_count
    simple = (is_nhwc(lhs, rhs, dimension_numbers)
              and not isinstance(padding, str) and not kwargs and precision is None
              and all(d == 1 for d in (lhs_dilation or (1, 1)))
              and (groups == 1 or is_depthwise(lhs, rhs, groups)))
    if not simple:
        return lax.conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation,
                                        rhs_dilation, dimension_numbers, groups,
                                        precision=precision, **kwargs)
    return _conv(lhs, rhs, tuple(window_strides), tuple(map(tuple, padding)),
                 tuple(rhs_dilation or (1, 1)), groups)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4, 5))
def _conv(x, w, strides, padding, dilation, groups):
    """x [B, H, W, C], w [kh, kw, C / groups, O] -> [B, Ho, Wo, O]."""
    return lax.conv_general_dilated(x, w, strides, padding, rhs_dilation=dilation,
                                    dimension_numbers=NHWC, feature_group_count=groups)


def _conv_fwd(x, w, strides, padding, dilation, groups):
    return _conv(x, w, strides, padding, dilation, groups), (x, w)


def _conv_bwd(strides, padding, dilation, groups, residuals, dy):
    x, w = residuals
    x_pad = lax.pad(x, jnp.zeros((), x.dtype),
                    ((0, 0, 0), *((lo, hi, 0) for lo, hi in padding), (0, 0, 0)))
    return (_input_grad(dy, w, x.shape, x_pad.shape, strides, padding, dilation, groups),
            _kernel_grad(x_pad, dy, w.shape, strides, dilation, groups))


_conv.defvjp(_conv_fwd, _conv_bwd)


def _input_grad(dy, w, x_shape, pad_shape, strides, padding, dilation, groups):
    """dL/dx: the full correlation of the stride-dilated ``dy`` with the flipped kernel, cropped
    to the unpadded input."""
    kh, kw = w.shape[:2]
    config = [(0, 0, 0)]
    for axis, (k, s, d) in enumerate(zip((kh, kw), strides, dilation), start=1):
        used = s * (dy.shape[axis] - 1) + 1
        config.append((d * (k - 1), pad_shape[axis] - used, s - 1))
    config.append((0, 0, 0))
    z = lax.pad(dy, jnp.zeros((), dy.dtype), config)
    flipped = jnp.flip(w, (0, 1))
    if groups == 1:
        flipped = flipped.transpose(0, 1, 3, 2)
    dx_pad = lax.conv_general_dilated(z, flipped, (1, 1), "VALID", rhs_dilation=dilation,
                                      dimension_numbers=NHWC, feature_group_count=groups)
    (top, _), (left, _) = padding
    return dx_pad[:, top:top + x_shape[1], left:left + x_shape[2], :]


def _kernel_grad(x_pad, dy, w_shape, strides, dilation, groups):
    """dL/dw [kh, kw, C / groups, O]: ``sum_{b,o} x_pad[b, o*s + k*d] dy[b, o]`` per tap k."""
    kh, kw = w_shape[:2]
    (sh, sw), (dh, dw), (_, ho, wo, _) = strides, dilation, dy.shape
    if groups == 1:  # a forward conv: input channels as the batch, the batch as channels
        lhs = x_pad.transpose(3, 1, 2, 0)  # [C, Hp, Wp, B]
        rhs = dy.transpose(1, 2, 0, 3)  # [Ho, Wo, B, O]
        out = lax.conv_general_dilated(lhs, rhs, (dh, dw), "VALID", rhs_dilation=(sh, sw),
                                       dimension_numbers=NHWC)  # [C, >=kh, >=kw, O]
        return out[:, :kh, :kw, :].transpose(1, 2, 0, 3)
    taps = [[jnp.sum(x_pad[:, i * dh:i * dh + sh * (ho - 1) + 1:sh,
                           j * dw:j * dw + sw * (wo - 1) + 1:sw, :] * dy, axis=(0, 1, 2))
             for j in range(kw)] for i in range(kh)]
    return jnp.stack([jnp.stack(row) for row in taps])[:, :, None, :]
