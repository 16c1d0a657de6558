"""Permanent pruning of parameters that reach zero or below (constrained DARTS's CRB, spec 003
section 2.2): once an entry is non-positive after an update it is set to 0 and stays 0, and the
moment estimates the wrapped rule keeps for it are zeroed, so no momentum can revive it."""

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax


class PruneState(NamedTuple):
    inner: Any  # the wrapped rule's state
    mask: Any  # bool pytree shaped like the parameters: True while an entry is alive


def prune_nonpositive(inner: optax.GradientTransformation) -> optax.GradientTransformationExtraArgs:
    """Wraps ``inner`` (e.g. ``optax.adam``): after its update, every entry whose new value is
    <= 0, or that was pruned before, gets the update ``-param`` (its new value is exactly 0), and
    every parameter-shaped leaf of ``inner``'s state (Adam's ``mu`` and ``nu``) is zeroed there."""
    inner = optax.with_extra_args_support(inner)

    def init(params):
        return PruneState(inner.init(params),
                          jax.tree.map(lambda p: jnp.ones(jnp.shape(p), bool), params))

    def update(updates, state, params=None, **extra_args):
        if params is None:
            raise ValueError("prune_nonpositive needs the parameters: call update(updates, "
                             "state, params).")
        updates, inner_state = inner.update(updates, state.inner, params, **extra_args)
        new = optax.apply_updates(params, updates)
        mask = jax.tree.map(lambda alive, p: alive & (p > 0), state.mask, new)
        updates = jax.tree.map(lambda alive, u, p: jnp.where(alive, u, -p), mask, updates, params)
        inner_state = optax.tree_utils.tree_map_params(
            inner, lambda s, alive: jnp.where(alive, s, jnp.zeros_like(s)), inner_state, mask)
        return updates, PruneState(inner_state, mask)

    return optax.GradientTransformationExtraArgs(init, update)
