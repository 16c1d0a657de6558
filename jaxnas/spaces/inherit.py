"""Weight inheritance: a discrete network takes its variables from the supernet it was derived from.

Supernet and discrete networks name every edge ``edge_{dst}_{src}/{op}``, so the discrete network's
variables are the supernet's at the same paths.
"""

import flax
import jax


def inherit_variables(supernet_variables: dict, network: flax.linen.Module, *args, **kwargs) -> dict:
    """The variables of ``network`` (built with the same width and depth as the supernet) taken
    from ``supernet_variables``; ``args``/``kwargs`` are a sample call of ``network``."""
    shapes = jax.eval_shape(lambda: network.init(jax.random.PRNGKey(0), *args, **kwargs))
    source = flax.traverse_util.flatten_dict(flax.core.unfreeze(supernet_variables))
    target = flax.traverse_util.flatten_dict(flax.core.unfreeze(shapes))
    for path, leaf in target.items():
        if path not in source or source[path].shape != leaf.shape:
            found = "missing" if path not in source else f"of shape {source[path].shape}"
            raise ValueError(
                f"The supernet has no variable {'/'.join(path)} of shape {leaf.shape} ({found}); "
                "build the network with the supernet's width, depth and batch-norm settings.")
    return flax.traverse_util.unflatten_dict({path: source[path] for path in target})
