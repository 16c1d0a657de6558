"""Multiply-add counting: closed forms for single layers and operations, and the published counts of
DARTS-space networks (every count is a jax.eval_shape, nothing is compiled)."""

import functools
import math

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import pytest

from jaxnas.spaces.darts import darts_network
from jaxnas.spaces.flops import count_macs
from jaxnas.spaces.ops import make_op
from jaxnas.spaces.published import PUBLISHED

# The evaluation networks: (darts_network arguments, input shape).
SETTINGS = {
    "cifar10": (dict(C=36, layers=20, num_classes=10), (1, 32, 32, 3)),
    "imagenet": (dict(C=48, layers=14, num_classes=1000, imagenet=True), (1, 224, 224, 3)),
}


# ---------------------------------------------------------------- single layers, closed forms


def test_conv_closed_form():
    # 9x7x5 input, 3x2 kernel, stride (2, 1), padding 1 along the height only:
    # out_h = (9 + 2 - 3) // 2 + 1 = 5, out_w = (7 - 2) // 1 + 1 = 6.
    conv = nn.Conv(4, (3, 2), strides=(2, 1), padding=((1, 1), (0, 0)))
    assert count_macs(conv, (1, 9, 7, 5)) == 5 * 6 * 4 * (3 * 2 * 5)


def test_dense_closed_form():
    assert count_macs(nn.Dense(7), (1, 12)) == 12 * 7
    # A dense layer on [B, 3, 12] is applied at each of the 3 positions.
    assert count_macs(nn.Dense(7), (1, 3, 12)) == 3 * 12 * 7


def test_depthwise_and_grouped_conv_closed_form():
    depthwise = nn.Conv(6, (3, 3), padding=1, feature_group_count=6)
    assert count_macs(depthwise, (1, 8, 8, 6)) == 8 * 8 * 6 * (3 * 3 * 6 // 6)
    grouped = nn.Conv(4, (3, 3), padding=1, feature_group_count=2)
    assert count_macs(grouped, (1, 8, 8, 6)) == 8 * 8 * 4 * (3 * 3 * 6 // 2)


def test_count_is_per_example():
    conv = nn.Conv(4, (3, 3), padding=1)
    assert count_macs(conv, (5, 8, 8, 3)) == count_macs(conv, (1, 8, 8, 3)) == 8 * 8 * 4 * 27


def test_layers_add_up():
    class Two(nn.Module):
        @nn.compact
        def __call__(self, x):
            x = nn.Conv(8, (3, 3), strides=2, padding=1)(x)  # 16x16 -> 8x8
            return nn.Dense(10)(x.reshape(x.shape[0], -1))

    assert count_macs(Two(), (2, 16, 16, 3)) == 8 * 8 * 8 * 27 + (8 * 8 * 8) * 10


def test_uncountable_kernel_is_an_error():
    with pytest.raises(ValueError, match="ConvTranspose"):
        count_macs(nn.ConvTranspose(4, (3, 3)), (1, 8, 8, 3))


def test_input_without_batch_dimension_is_an_error():
    with pytest.raises(ValueError, match="batch dimension"):
        count_macs(nn.Dense(3), (12,))


# ---------------------------------------------------------------- operations, closed forms

H = W = 8
C = 6


def _sep(k, s):  # two (depthwise k x k, pointwise) blocks, both at the strided resolution
    return 2 * (H // s) * (W // s) * (k * k * C + C * C)


def _dil(k, s):
    return (H // s) * (W // s) * (k * k * C + C * C)


@pytest.mark.parametrize("name, stride, expected", [
    ("sep_conv_3x3", 1, _sep(3, 1)),
    ("sep_conv_5x5", 2, _sep(5, 2)),
    ("sep_conv_7x7", 1, _sep(7, 1)),
    ("dil_conv_3x3", 2, _dil(3, 2)),
    ("dil_conv_5x5", 1, _dil(5, 1)),
    ("conv_1x1", 1, H * W * C * C),
    ("conv_3x3", 2, (H // 2) * (W // 2) * 9 * C * C),
    # 1x3 with stride (1, 2), then 3x1 with stride (2, 1).
    ("conv_3x1_1x3", 2, H * (W // 2) * 3 * C * C + (H // 2) * (W // 2) * 3 * C * C),
    # FactorizedReduce: two 1x1 stride-2 convolutions to C/2 channels each.
    ("skip_connect", 2, 2 * (H // 2) * (W // 2) * (C // 2) * C),
    ("skip_connect", 1, 0),
    ("max_pool_3x3", 2, 0),
    ("avg_pool_3x3", 1, 0),
    ("none", 1, 0),
])
def test_operation_closed_form(name, stride, expected):
    op = make_op(name, C, stride, affine=True)
    assert count_macs(op, (1, H, W, C), train=False) == expected


# ---------------------------------------------------------------- published networks


@functools.cache
def _macs(genotype_name, setting):
    network, x_shape = SETTINGS[setting]
    return count_macs(darts_network(PUBLISHED[genotype_name], **network), x_shape, train=False)


# The Zhang thesis's "FLOPs" columns, counted by GDAS's conv + linear counter, in M (rounded):
# Table 3.1 on CIFAR-10 (20 cells, C=36), Table 5.1 on ImageNet (14 cells, C=48, 224x224).
@pytest.mark.parametrize("name, setting, published_m", [
    ("DARTS_V1", "cifar10", 501),
    ("DARTS_V2", "cifar10", 528),
    ("PDARTS", "cifar10", 532),
    ("PC_DARTS_CIFAR", "cifar10", 557),
    ("DARTS_V2", "imagenet", 530),
    ("PDARTS", "imagenet", 543),
    ("PC_DARTS_CIFAR", "imagenet", 571),
])
def test_conv_linear_flops_of_the_zhang_thesis(name, setting, published_m):
    assert round(_macs(name, setting) / 1e6) == published_m


# The x+ of the method papers on ImageNet (DARTS 574M; P-DARTS 557M; PC-DARTS 586M searched on
# CIFAR-10 and 597M searched on ImageNet), as reprinted in Amended-DARTS Table 2 and the Zhang
# thesis Table 4.6. Their counters add batch norm and ReLU (P-DARTS, PC-DARTS: +2.6%) or are
# unpublished (DARTS: +8.3%, unexplained; see jaxnas.spaces.flops), so a conv + linear count lies
# below them: the test asks for [0.9, 1.0) of the published number, 10% covering DARTS's gap.
@pytest.mark.parametrize("name, published", [
    ("DARTS_V2", 574e6),
    ("PDARTS", 557e6),
    ("PC_DARTS_CIFAR", 586e6),
    ("PC_DARTS_IMAGENET", 597e6),
])
def test_published_imagenet_multiply_adds_bound_the_count(name, published):
    assert 0.9 * published <= _macs(name, "imagenet") < published


def test_darts_v2_imagenet_parameters():
    # DARTS paper, ImageNet mobile setting: 4.7M parameters (rounded), auxiliary head excluded.
    network, x_shape = SETTINGS["imagenet"]
    net = darts_network(PUBLISHED["DARTS_V2"], **network)
    shapes = jax.eval_shape(lambda: net.init(jax.random.key(0), jnp.zeros(x_shape), train=False))
    leaves = flax.traverse_util.flatten_dict(shapes["params"]).values()
    assert round(sum(math.prod(leaf.shape) for leaf in leaves) / 1e5) == 47
