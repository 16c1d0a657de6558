"""REINFORCE on the NB201 oracle with NAS-Bench-201's settings
(``exps/NAS-Bench-201-algos/reinforce.py``): the policy is one logit per (edge, op), initialised
1e-3 N(0, 1), every edge's op drawn independently from its softmax; each query samples one cell,
its search-metric accuracy (in %) is the reward R, and the logits take one Adam step (PyTorch's
defaults: betas (0.9, 0.999), eps 1e-8, no weight decay, no clipping) on
-(R - b) log pi(cell). The baseline b is NAS-Bench-201's bias-corrected exponential moving
average of the rewards (momentum 0.9), updated with R before the advantage is taken. The result
is the best cell sampled.

Learning rate: NAS-Bench-201's reproduction instructions run ``REINFORCE.sh 0.5`` (the default
here); earlier scripts passed 0.001. The update is ``jaxnas.strategies.reinforce``'s
``reinforce_update`` (its own baseline off; the advantage is passed as the reward). The whole
search is one jitted ``lax.scan``.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxnas.benchmarks.oracle import NUM_EDGES, NUM_OPS, NB201Oracle
from jaxnas.blackbox.history import History, as_key, check_oracle, make_history
from jaxnas.rl._checks import check_integer, check_real
from jaxnas.strategies.reinforce import init_reinforce, reinforce_update, sample_paths

NB201_LR = 0.5
NB201_EMA_MOMENTUM = 0.9
NB201_INIT_SCALE = 1e-3


class EMA(NamedTuple):
    """NAS-Bench-201's ``ExponentialMovingAverage``: value = numerator / denominator."""

    numerator: jax.Array
    denominator: jax.Array


def ema_update(ema: EMA, value, momentum: float) -> EMA:
    return EMA(momentum * ema.numerator + (1 - momentum) * value,
               momentum * ema.denominator + (1 - momentum))


@functools.partial(jax.jit, static_argnames=("queries",))
def _search(oracle, key, lr, momentum, init_scale, *, queries):
    tx = optax.adam(lr, b1=0.9, b2=0.999, eps=1e-8)
    init_key, key = jax.random.split(key)
    logits = {"cell": init_scale * jax.random.normal(init_key, (NUM_EDGES, NUM_OPS))}
    state = init_reinforce(logits, tx)
    ema = EMA(jnp.zeros((), jnp.float32), jnp.zeros((), jnp.float32))

    def step(carry, t):
        state, ema = carry
        paths = sample_paths(jax.random.fold_in(key, t), state.logits, 1)
        reward = oracle.search_accuracy(paths["cell"][0])
        ema = ema_update(ema, reward, momentum)
        advantage = reward - ema.numerator / ema.denominator
        state, _ = reinforce_update(state, paths, advantage[None], tx=tx, baseline_step=None)
        return (state, ema), paths["cell"][0]

    _, cells = jax.lax.scan(step, (state, ema), jnp.arange(queries))
    return cells


def run_reinforce(oracle: NB201Oracle, key_or_seed, queries: int = 500, lr: float = NB201_LR,
                  momentum: float = NB201_EMA_MOMENTUM,
                  init_scale: float = NB201_INIT_SCALE) -> History:
    """REINFORCE for ``queries`` queries (one sampled cell and one policy update each)."""
    check_oracle(oracle)
    check_integer("queries", queries, 1, "the number of oracle evaluations, e.g. 500")
    check_real("lr", lr, 0, float("inf"), "()", "Adam's learning rate; 0.5 in NAS-Bench-201")
    check_real("momentum", momentum, 0, 1, "[)", "the baseline's EMA momentum, 0.9")
    check_real("init_scale", init_scale, 0, float("inf"), "[)",
               "the std of the initial logits, 1e-3")
    cells = _search(oracle.bare(), as_key(key_or_seed), jnp.float32(lr), jnp.float32(momentum),
                    jnp.float32(init_scale), queries=queries)
    return make_history(oracle, cells)
