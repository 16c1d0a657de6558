"""A penalty on the parameters, added to the objective through its gradient."""

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax


class PenaltyState(NamedTuple):
    metrics: dict  # {name: the weighted penalty at the parameters of the last update}


def penalty(fn: Callable, weight=1.0, name: str = "penalty") -> optax.GradientTransformationExtraArgs:
    """Adds ``weight * grad fn(params)`` to the updates, i.e. minimizes ``objective + weight *
    fn``.

    Args:
      fn: ``params -> scalar``, differentiable.
      weight: a number, or ``progress -> number`` read from the extra argument ``progress`` (the
        fraction of the planned search done), for a penalty that ramps up.
      name: the metric under which the weighted penalty is reported.
    """

    def init(params):
        del params
        return PenaltyState({name: jnp.zeros((), jnp.float32)})

    def update(updates, state, params=None, *, progress=None, **extra_args):
        del state, extra_args
        if params is None:
            raise ValueError(f"penalty {name!r} needs the parameters: call update(updates, "
                             "state, params).")
        if callable(weight):
            if progress is None:
                raise ValueError(f"penalty {name!r} has a weight schedule and needs the extra "
                                 "argument progress=.")
            scale = weight(progress)
        else:
            scale = weight
        value, grad = jax.value_and_grad(fn)(params)
        updates = jax.tree.map(lambda u, g: u + scale * g, updates, grad)
        return updates, PenaltyState({name: jnp.asarray(scale * value, jnp.float32)})

    return optax.GradientTransformationExtraArgs(init, update)


def safe_norm(tree):
    """The Euclidean norm of a pytree, with value and gradient 0 at 0 (where ``sqrt`` has none)."""
    squared = sum(jnp.sum(jnp.square(x)) for x in jax.tree.leaves(tree))
    positive = squared > 0
    return jnp.where(positive, jnp.sqrt(jnp.where(positive, squared, 1.0)), 0.0)
