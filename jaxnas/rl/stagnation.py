"""DDAS-4S's stagnation detector (spec 001 section 2.1 step 6, ambiguity 12), jit-able.

Two consecutive architectures are similar when fewer than 6 of the 16 active (edge, op) pairs
differ (``discretize.num_differing_pairs``). After ``patience`` (T_stag = 32) similar steps in a
row, the next ``patience`` actions get Ornstein-Uhlenbeck noise (a burst; restart the process,
``noise.ou_init``, when one starts). The counter pauses during a burst and restarts from 0 after
it, and a dissimilar step resets it.

``Stagnation(count, burst)``: ``count`` int32[] similar steps in a row; ``burst`` int32[] burst
actions still to come: the action of a step is a burst action when ``burst > 0`` before its
``update``.
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxnas.rl._checks import check_integer


class Stagnation(NamedTuple):
    count: jax.Array
    burst: jax.Array


def init_stagnation() -> Stagnation:
    return Stagnation(jnp.zeros((), jnp.int32), jnp.zeros((), jnp.int32))


def update(state: Stagnation, similar, patience: int = 32) -> tuple[Stagnation, jax.Array]:
    """After a step whose architecture was ``similar`` (bool[]) to the previous one: the new
    state and bool[] whether a burst starts (the next ``patience`` actions are burst actions)."""
    check_integer("T_stag (the stagnation patience)", patience, 1, "32 in DDAS-4S")
    in_burst = state.burst > 0
    count = jnp.where(in_burst, state.count, jnp.where(similar, state.count + 1, 0))
    starts = ~in_burst & (count >= patience)
    burst = jnp.where(in_burst, state.burst - 1, jnp.where(starts, patience, 0))
    return Stagnation(jnp.where(starts, 0, count).astype(jnp.int32),
                      burst.astype(jnp.int32)), starts
