"""Multiply-add counts of a forward pass: the "FLOPs" / "x+" that NAS papers report.

The count is analytic: every ``nn.Conv`` costs ``out_h * out_w * out_c * (kh * kw * in_c / groups)``
multiply-adds and every ``nn.Dense`` ``in * out``. Biases, batch norm, activations, pooling, the
additions that merge a node's inputs and the concatenations are not counted: they are not
multiply-adds of a weight, and counters disagree on them.

This is the convention of the counter in the Zhang thesis's code (GDAS's: conv and linear layers
only), and its "FLOPs" columns are reproduced to the printed integer (Table 3.1, CIFAR-10 at C=36:
DARTS_V1 501M, DARTS_V2 528M, P-DARTS 532M, PC-DARTS 557M; Table 5.1, ImageNet: DARTS_V2 530M,
P-DARTS 543M, PC-DARTS 571M).
The "x+" that the method papers print come from other counters and are higher. P-DARTS's 557M and
PC-DARTS's 586M / 597M equal this count plus thop's 2 operations per batch-norm element and 1 per
ReLU element (557.1M, 585.9M, 597.1M). DARTS_V2's 574M (DARTS paper; 529.9M here) matches neither
convention (conv + linear + BN + ReLU gives 544.0M); the DARTS authors did not publish their
counter, and independent recounts of the same network get 523M to 545M (github.com/quark0/darts
issue 46).

Each convolution and dense layer is intercepted (``flax.linen.intercept_methods``) during a
``jax.eval_shape`` of ``net.init``: nothing is compiled or computed, so counting a full ImageNet
network takes about a second. Modules built only when ``train`` is True (the auxiliary head of the
DARTS networks) are left out by calling with ``train=False``.
"""

import math
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp


def count_macs(net: nn.Module, x_shape: Sequence[int], **call_kwargs) -> int:
    """Multiply-adds of ``net(x, **call_kwargs)`` for one example.

    ``x_shape`` is the input's shape with its leading batch dimension, e.g. ``(1, 224, 224, 3)``;
    the count is per example whatever the batch size. ``call_kwargs`` go to the network's call
    (``train=False`` for the DARTS networks, so that the auxiliary head is not built).

    Raises ValueError for a module with a ``kernel`` that is neither ``nn.Conv`` nor ``nn.Dense``
    (its cost would otherwise be silently missing).
    """
    if len(x_shape) < 2:
        raise ValueError(f"x_shape must have a batch dimension and at least one more, got "
                         f"{tuple(x_shape)}; pass e.g. (1, 32, 32, 3).")
    per_layer = []

    def interceptor(next_fun, args, kwargs, context):
        out = next_fun(*args, **kwargs)
        if context.method_name != "__call__":
            return out
        params = context.module.variables.get("params", {})
        if isinstance(context.module, (nn.Conv, nn.Dense)):
            # kernel [kh, kw, in/groups, out] or [in, out]: each output element costs one
            # multiply-add per kernel entry that feeds it, i.e. prod(kernel.shape[:-1]).
            per_example = math.prod(out.shape[1:])
            per_layer.append(per_example * math.prod(params["kernel"].shape[:-1]))
        elif "kernel" in params:
            raise ValueError(
                f"count_macs counts nn.Conv and nn.Dense only; module {context.module.name!r} "
                f"({type(context.module).__name__}) has a kernel it cannot count. Build the "
                "network from nn.Conv / nn.Dense or extend count_macs for this module type.")
        return out

    x = jax.ShapeDtypeStruct(tuple(x_shape), jnp.float32)
    with nn.intercept_methods(interceptor):
        jax.eval_shape(lambda x: net.init(jax.random.key(0), x, **call_kwargs), x)
    return int(sum(per_layer))


def module_cost(module: nn.Module, x_shape: Sequence[int], **call_kwargs) -> tuple[int, int]:
    """``(parameters, multiply-adds per example)`` of ``module(x, **call_kwargs)`` on an input of
    ``x_shape`` (with its batch axis); traced, never run."""
    x = jax.ShapeDtypeStruct(tuple(x_shape), jnp.float32)
    shapes = jax.eval_shape(lambda x: module.init(jax.random.key(0), x, **call_kwargs), x)
    params = sum(math.prod(leaf.shape) for leaf in jax.tree.leaves(shapes.get("params", {})))
    return params, count_macs(module, x_shape, **call_kwargs)
