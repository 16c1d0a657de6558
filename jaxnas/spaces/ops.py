"""Candidate operations of the NAS-Bench-201 and DARTS search spaces, as Flax linen modules.

All tensors are NHWC. Every operation maps ``C`` channels to ``C`` channels; ``stride=2`` halves
the spatial size. Convolutions have no bias and use PyTorch's default initialization, so that
networks start from the same distribution as the reference implementations.

``make_op(name, C, stride, affine, pool_bn)`` builds an operation by name; ``affine`` switches the
scale and shift of batch norm (off in search networks), ``pool_bn`` appends a non-affine batch norm
to pooling operations (what the DARTS search network's mixed operation does).
"""

import contextlib
import contextvars
import functools
import math
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

from jaxnas.spaces import canonical_conv, depthwise, pooling


def torch_kernel_bound(shape: Sequence[int]) -> float:
    """1/sqrt(fan_in) of a kernel [..., in, out] (conv HWIO or dense IO)."""
    return 1.0 / math.sqrt(math.prod(shape[:-1]))


def torch_kernel_init(key, shape, dtype=jnp.float32):
    """PyTorch's default for conv and linear kernels, kaiming_uniform(a=sqrt(5)):
    U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    bound = torch_kernel_bound(shape)
    return jax.random.uniform(key, shape, dtype, -bound, bound)


NB201_OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
DARTS_OPS = (
    "none",
    "max_pool_3x3",
    "avg_pool_3x3",
    "skip_connect",
    "sep_conv_3x3",
    "sep_conv_5x5",
    "dil_conv_3x3",
    "dil_conv_5x5",
)
# TND-NAS's candidates in its printed order (spec 000, section 3): every convolution for the
# normal cell, no convolution for the reduction cell.
TND_NORMAL_OPS = ("none", "skip_connect", "sep_conv_3x3", "sep_conv_5x5", "sep_conv_7x7",
                  "dil_conv_3x3", "dil_conv_5x5", "conv_1x1", "conv_3x3", "conv_3x1_1x3")
TND_REDUCE_OPS = ("none", "skip_connect", "max_pool_3x3", "avg_pool_3x3", "max_pool_5x5",
                  "max_pool_7x7")


def batch_norm(train: bool, affine: bool, name: str | None = None) -> nn.BatchNorm:
    """Batch norm with PyTorch's defaults (momentum 0.1, eps 1e-5)."""
    return nn.BatchNorm(
        use_running_average=not train,
        momentum=0.9,
        epsilon=1e-5,
        use_scale=affine,
        use_bias=affine,
        name=name,
    )


_CANONICAL = contextvars.ContextVar("canonical_convs", default=False)


@contextlib.contextmanager
def canonical_convs():
    """Inside this context ``conv`` builds convolutions whose derivatives run fast inside a
    ``lax.switch`` or a ``lax.scan`` (``jaxnas.spaces.canonical_conv``): for the operations of a
    single-path edge and the cells of a scanned stage."""
    token = _CANONICAL.set(True)
    try:
        yield
    finally:
        _CANONICAL.reset(token)


_DEPTHWISE_TAPS = contextvars.ContextVar("depthwise_taps", default=False)


@contextlib.contextmanager
def depthwise_taps():
    """Inside this context and ``canonical_convs``, ``conv`` keeps depthwise convolutions
    depthwise canonical ones, which the CPU runs as multiply-adds over their kernel taps
    (``jaxnas.spaces.depthwise.taps``), not as dense ones: for the edges of a scanned cell,
    whose program holds each operation once."""
    token = _DEPTHWISE_TAPS.set(True)
    try:
        yield
    finally:
        _DEPTHWISE_TAPS.reset(token)


def conv(features: int, kernel: int | Sequence[int], stride=1, padding=0, dilation=1, groups=1,
         name: str | None = None) -> nn.Conv:
    """A bias-free convolution with explicit symmetric padding, canonical inside
    ``canonical_convs``; depthwise ones (``groups`` equal to the channel count) run on CPU as
    dense ones, or as taps within ``depthwise_taps`` (``jaxnas.spaces.depthwise``)."""
    kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
    sh, sw = (stride, stride) if isinstance(stride, int) else stride
    ph, pw = (padding, padding) if isinstance(padding, int) else padding
    return nn.Conv(
        features,
        (kh, kw),
        strides=(sh, sw),
        padding=((ph, ph), (pw, pw)),
        kernel_dilation=(dilation, dilation),
        feature_group_count=groups,
        use_bias=False,
        kernel_init=torch_kernel_init,
        conv_general_dilated=_conv_implementation(groups),
        name=name,
    )


def _conv_implementation(groups: int):
    """The ``conv_general_dilated`` for ``conv``."""
    canonical = _CANONICAL.get()
    implementation = canonical_conv.conv_general_dilated if canonical else lax.conv_general_dilated
    taps = canonical and _DEPTHWISE_TAPS.get()  # XLA:CPU lowers canonical depthwise ones to taps
    if groups > 1 and depthwise.dense_is_faster() and not taps:
        return depthwise.as_dense(implementation)
    return implementation


class Zero(nn.Module):
    """The ``none`` operation: zeros, spatially subsampled by ``stride``."""

    stride: int = 1

    def __call__(self, x, train: bool = False):
        return jnp.zeros_like(x[:, :: self.stride, :: self.stride, :])


class Identity(nn.Module):
    def __call__(self, x, train: bool = False):
        return x


class ReLUConvBN(nn.Module):
    """ReLU -> conv(k x k) -> BN; ``C_out`` defaults to the input width."""

    C_out: int
    kernel: int
    stride: int = 1
    padding: int = 0
    dilation: int = 1
    affine: bool = True

    @nn.compact
    def __call__(self, x, train: bool = False):
        x = nn.relu(x)
        x = conv(self.C_out, self.kernel, self.stride, self.padding, self.dilation)(x)
        return batch_norm(train, self.affine)(x)


class FactorizedReduce(nn.Module):
    """Halves the resolution with two offset 1x1 stride-2 convolutions, concatenated."""

    C_out: int
    affine: bool = True

    @nn.compact
    def __call__(self, x, train: bool = False):
        if self.C_out % 2:
            raise ValueError(f"FactorizedReduce needs an even channel count, got {self.C_out}.")
        x = nn.relu(x)
        a = conv(self.C_out // 2, 1, stride=2)(x)
        b = conv(self.C_out // 2, 1, stride=2)(x[:, 1:, 1:, :])
        return batch_norm(train, self.affine)(jnp.concatenate([a, b], axis=-1))


class SepConv(nn.Module):
    """Two stacked (ReLU, depthwise k x k, pointwise 1x1, BN) blocks; only the first is strided."""

    kernel: int
    stride: int
    affine: bool = True

    @nn.compact
    def __call__(self, x, train: bool = False):
        C = x.shape[-1]
        pad = self.kernel // 2
        for stride in (self.stride, 1):
            x = nn.relu(x)
            x = conv(C, self.kernel, stride, pad, groups=C)(x)
            x = conv(C, 1)(x)
            x = batch_norm(train, self.affine)(x)
        return x


class DilConv(nn.Module):
    """ReLU, depthwise k x k with dilation 2, pointwise 1x1, BN."""

    kernel: int
    stride: int
    affine: bool = True

    @nn.compact
    def __call__(self, x, train: bool = False):
        C = x.shape[-1]
        x = nn.relu(x)
        x = conv(C, self.kernel, self.stride, padding=self.kernel - 1, dilation=2, groups=C)(x)
        x = conv(C, 1)(x)
        return batch_norm(train, self.affine)(x)


class FactorizedConv(nn.Module):
    """ReLU, conv 1 x k (stride along width), conv k x 1 (stride along height), BN."""

    kernel: int
    stride: int
    affine: bool = True

    @nn.compact
    def __call__(self, x, train: bool = False):
        C = x.shape[-1]
        pad = self.kernel // 2
        x = nn.relu(x)
        x = conv(C, (1, self.kernel), (1, self.stride), (0, pad))(x)
        x = conv(C, (self.kernel, 1), (self.stride, 1), (pad, 0))(x)
        return batch_norm(train, self.affine)(x)


class Pool(nn.Module):
    """k x k max or average pooling with padding k//2 (averages exclude the padding); on the CPU
    in ``jaxnas.spaces.pooling``'s forms."""

    kind: str
    kernel: int
    stride: int
    bn: bool = False

    @nn.compact
    def __call__(self, x, train: bool = False):
        window, strides = (self.kernel,) * 2, (self.stride,) * 2
        pad = ((self.kernel // 2,) * 2,) * 2
        if pooling.cpu_forms_are_faster():
            pool = pooling.max_pool if self.kind == "max" else pooling.avg_pool
        else:
            pool = (nn.max_pool if self.kind == "max" else
                    functools.partial(nn.avg_pool, count_include_pad=False))
        x = pool(x, window, strides, pad)
        return batch_norm(train, affine=False)(x) if self.bn else x


# name -> builder(C, stride, affine, pool_bn, module_name)
_BUILDERS = {
    "none": lambda C, s, a, p, n: Zero(s, name=n),
    "skip_connect": lambda C, s, a, p, n: (Identity(name=n) if s == 1
                                           else FactorizedReduce(C, a, name=n)),
    "nor_conv_1x1": lambda C, s, a, p, n: ReLUConvBN(C, 1, s, 0, affine=a, name=n),
    "nor_conv_3x3": lambda C, s, a, p, n: ReLUConvBN(C, 3, s, 1, affine=a, name=n),
    "conv_1x1": lambda C, s, a, p, n: ReLUConvBN(C, 1, s, 0, affine=a, name=n),
    "conv_3x3": lambda C, s, a, p, n: ReLUConvBN(C, 3, s, 1, affine=a, name=n),
    "sep_conv_3x3": lambda C, s, a, p, n: SepConv(3, s, a, name=n),
    "sep_conv_5x5": lambda C, s, a, p, n: SepConv(5, s, a, name=n),
    "sep_conv_7x7": lambda C, s, a, p, n: SepConv(7, s, a, name=n),
    "dil_conv_3x3": lambda C, s, a, p, n: DilConv(3, s, a, name=n),
    "dil_conv_5x5": lambda C, s, a, p, n: DilConv(5, s, a, name=n),
    "conv_3x1_1x3": lambda C, s, a, p, n: FactorizedConv(3, s, a, name=n),
    "conv_7x1_1x7": lambda C, s, a, p, n: FactorizedConv(7, s, a, name=n),
    "avg_pool_3x3": lambda C, s, a, p, n: Pool("avg", 3, s, p, name=n),
    "max_pool_3x3": lambda C, s, a, p, n: Pool("max", 3, s, p, name=n),
    "max_pool_5x5": lambda C, s, a, p, n: Pool("max", 5, s, p, name=n),
    "max_pool_7x7": lambda C, s, a, p, n: Pool("max", 7, s, p, name=n),
}
ALL_OPS = tuple(_BUILDERS)


def check_op_names(names: Sequence[str]) -> None:
    """Raises a ValueError naming the first unknown operation in ``names``."""
    for name in names:
        if name not in _BUILDERS:
            raise ValueError(
                f"Unknown operation {name!r}. Known operations: {', '.join(ALL_OPS)}.")


def make_op(name: str, C: int, stride: int, affine: bool, pool_bn: bool = False) -> nn.Module:
    """Builds the operation ``name`` for ``C`` channels and the given stride; inside a compact
    method it becomes a submodule called ``name``."""
    check_op_names([name])
    return _BUILDERS[name](C, stride, affine, pool_bn, name)
