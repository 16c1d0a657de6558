"""Fast initialization of the variables of jaxnas networks.

``jax.jit(net.init)`` draws every parameter with its own threefry call, and XLA compiles each of
them separately: the several hundred kernels of a DARTS supernet take minutes to compile on a CPU.
``init_variables`` draws the same distributions with a single random call: every ``kernel`` from
PyTorch's default ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))`` (the jaxnas modules' ``kernel_init``),
biases, batch-norm shifts and means 0, batch-norm scales and variances 1.
"""

import functools
import itertools
import math

import flax
import jax
import numpy as np

from jaxnas.spaces.ops import torch_kernel_bound

_CONSTANTS = {"bias": 0.0, "scale": 1.0, "mean": 0.0, "var": 1.0}


def init_variables(net: flax.linen.Module, key: jax.Array, *args, **kwargs) -> dict:
    """``net.init(key, *args, **kwargs)`` of a jaxnas network, drawn the fast way.

    Returns the variables dict (``params``, ``batch_stats``). Raises ValueError for a variable
    whose initializer it does not know (a network with modules of its own: use ``net.init``).
    """
    shapes = jax.eval_shape(lambda k: net.init(k, *args, **kwargs), key)
    flat = flax.traverse_util.flatten_dict(flax.core.unfreeze(shapes))
    kernels = [path for path in flat if path[-1] == "kernel"]
    for path in flat:
        if path[-1] != "kernel" and path[-1] not in _CONSTANTS:
            raise ValueError(f"init_variables does not know how to initialize {'/'.join(path)}; "
                             "use net.init for networks with other variables.")

    sizes = [math.prod(flat[path].shape) for path in kernels]
    noise = np.asarray(_uniform(key, sum(sizes)))
    values = {path: np.full(leaf.shape, _CONSTANTS[path[-1]], leaf.dtype)
              for path, leaf in flat.items() if path[-1] != "kernel"}
    for path, end, size in zip(kernels, itertools.accumulate(sizes), sizes):
        shape = flat[path].shape
        values[path] = (noise[end - size:end].reshape(shape)
                        * torch_kernel_bound(shape)).astype(flat[path].dtype)
    return jax.device_put(flax.traverse_util.unflatten_dict(values))


@functools.partial(jax.jit, static_argnums=1)
def _uniform(key, size):
    return jax.random.uniform(key, (size,), minval=-1.0, maxval=1.0)
