"""A 2-D convolution whose derivatives, to every order, are forward convolutions in canonical form.

XLA's CPU backend runs a convolution fast when it is a forward one in NHWC / HWIO order; at the
top level of a program it rewrites a gradient's convolutions (the input gradient, a transposed
convolution, and the kernel gradient, a convolution over the batch) into that form. Inside a
conditional (``lax.switch``) or a loop body (``lax.scan``) it does not, and compiles them as
generic loop nests, 10-50x slower (``BENCHMARKS.md``). A single-path edge runs its operation in
a ``lax.switch`` and a scanned stage its cells in a ``lax.scan``, so their convolutions are this
primitive, whose transpose rules compute

- the input gradient as a forward convolution of the output gradient (stride-dilated) with the
  spatially flipped, in/out-swapped kernel;
- the kernel gradient as a forward convolution of the input, its channels as the batch and the
  batch as channels, with the output gradient as the kernel (dense), or as a sum over the kernel
  taps of strided input slices times the output gradient (depthwise);

with the primitive itself, so the derivatives of those (an HVP, forward over reverse or reverse
over reverse) are forward convolutions too. Its JVP is the product rule of a bilinear map. The
padding stays inside each convolution: XLA:CPU's convolution ran 7x slower on an explicitly padded
input. On the CPU a depthwise one is lowered to multiply-adds over its kernel taps
(``jaxnas.spaces.depthwise.taps``), as are then its derivatives. Values and derivatives equal
XLA's convolution's up to float rounding (tested).
"""

import jax
import jax.numpy as jnp
from jax import lax
from jax.extend.core import Primitive
from jax.interpreters import ad, batching, mlir

from jaxnas.spaces import depthwise
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
    return _conv(lhs, rhs, window_strides, padding, rhs_dilation or (1, 1), groups)


def _conv(x, w, strides, padding, dilation, groups):
    """x [B, H, W, C], w [kh, kw, C / groups, O] -> [B, Ho, Wo, O]; ``padding`` ((lo, hi),
    (lo, hi)), entries may be negative (cropping)."""
    return conv_p.bind(x, w, strides=tuple(strides), padding=tuple(map(tuple, padding)),
                       dilation=tuple(dilation), groups=groups)


def _xla_conv(x, w, *, strides, padding, dilation, groups):
    return lax.conv_general_dilated(x, w, strides, padding, rhs_dilation=dilation,
                                    dimension_numbers=NHWC, feature_group_count=groups)


def _cpu_conv(x, w, *, strides, padding, dilation, groups):
    """The lowering on XLA:CPU: a depthwise convolution as taps (``jaxnas.spaces.depthwise``)."""
    if groups > 1 and depthwise.dense_is_faster():
        return depthwise.taps(x, w, strides, padding, dilation)
    return _xla_conv(x, w, strides=strides, padding=padding, dilation=dilation, groups=groups)


def _shape(x, w, **params):
    out = jax.eval_shape(lambda x, w: _xla_conv(x, w, **params), x, w)
    return jax.core.ShapedArray(out.shape, out.dtype)


def _input_transpose(dy, x, w, *, strides, padding, dilation, groups):
    """dL/dx [B, H, W, C]: the stride-dilated ``dy`` correlated with the flipped kernel, padded
    by ``d (k - 1)`` less the forward padding on each side."""
    pads = []
    for axis, (k, s, d, (lo, hi)) in enumerate(zip(w.shape[:2], strides, dilation, padding), 1):
        used = s * (dy.shape[axis] - 1) + 1  # the padded input rows the forward pass read
        pads.append((d * (k - 1) - lo, x.aval.shape[axis] + lo - used))
    flipped = jnp.flip(w, (0, 1))
    if groups == 1:
        flipped = flipped.transpose(0, 1, 3, 2)
    if any(s > 1 for s in strides):
        interior = ((0, 0, 0), *((0, 0, s - 1) for s in strides), (0, 0, 0))
        dy = lax.pad(dy, jnp.zeros((), dy.dtype), interior)
    return _conv(dy, flipped, (1, 1), pads, dilation, groups)


def _kernel_transpose(dy, x, w, *, strides, padding, dilation, groups):
    """dL/dw [kh, kw, C / groups, O]: ``sum_{b,o} x_pad[b, o*s + k*d] dy[b, o]`` per tap k."""
    kh, kw = w.aval.shape[:2]
    if groups == 1:  # a forward conv: input channels as the batch, the batch as channels
        out = _conv(x.transpose(3, 1, 2, 0), dy.transpose(1, 2, 0, 3), dilation, padding,
                    strides, 1)  # [C, >=kh, >=kw, O]
        return out[:, :kh, :kw, :].transpose(1, 2, 0, 3)
    (sh, sw), (dh, dw), (_, ho, wo, _) = strides, dilation, dy.shape
    x_pad = lax.pad(x, jnp.zeros((), x.dtype),
                    ((0, 0, 0), *((lo, hi, 0) for lo, hi in padding), (0, 0, 0)))
    taps = [[jnp.sum(x_pad[:, i * dh:i * dh + sh * (ho - 1) + 1:sh,
                           j * dw:j * dw + sw * (wo - 1) + 1:sw, :] * dy, axis=(0, 1, 2))
             for j in range(kw)] for i in range(kh)]
    return jnp.stack([jnp.stack(row) for row in taps])[:, :, None, :]


def _batched(args, dims, **params):
    """vmap: a batched input alone folds into the batch; a batched kernel is mapped over."""
    (x, w), (x_dim, w_dim) = args, dims
    if w_dim is None:
        x = jnp.moveaxis(x, x_dim, 0)
        y = conv_p.bind(x.reshape(-1, *x.shape[2:]), w, **params)
        return y.reshape(*x.shape[:2], *y.shape[1:]), 0
    w = jnp.moveaxis(w, w_dim, 0)
    x = jnp.broadcast_to(x, (w.shape[0], *x.shape)) if x_dim is None else jnp.moveaxis(x, x_dim, 0)
    return lax.map(lambda xw: conv_p.bind(*xw, **params), (x, w)), 0


conv_p = Primitive("canonical_conv")
conv_p.def_impl(_xla_conv)
conv_p.def_abstract_eval(_shape)
mlir.register_lowering(conv_p, mlir.lower_fun(_xla_conv, multiple_results=False))
mlir.register_lowering(conv_p, mlir.lower_fun(_cpu_conv, multiple_results=False), platform="cpu")
ad.defbilinear(conv_p, _input_transpose, _kernel_transpose)
batching.primitive_batchers[conv_p] = _batched
