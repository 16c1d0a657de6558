"""REINFORCE on architecture logits (TND-NAS, spec 000 Eq. 4-8), jit-able.

The policy draws every edge's operation independently from ``softmax(logits[kind][e])``; one
draw is a path ``{kind: int32[E]}`` (``none`` is an operation like any other, so a path may
leave a node with 0 to all of its inputs). With M paths g_m and rewards R_m the logits descend
the surrogate

    L(logits) = -(1/M) sum_m (R_m - b) log pi(g_m),   grad = -(1/M) sum_m (R_m - b)(onehot(g_m) - p)

per edge, i.e. ascend the Eq. 8 estimate of grad E[R]. The baseline b is 0 (``baseline_step``
None: the paper's literal Eq. 8) or the author code's moving average (A9, the default):
b = mean_m R_m at the first update, then b += 0.95 (mean_m R_m - b), updated before the
advantages are taken. The update rule is ``reinforce_optimizer``: clipping to global norm 5, then
PyTorch's Adam with L2 weight decay (lr 6e-3, betas (0.5, 0.999), 1e-3; A10).
"""

import numbers
from typing import Mapping, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxnas.spaces.costs import path_sum
from jaxnas.strategies.options import update_rule

TND_ADAM = {"name": "adam", "lr": 6e-3, "b1": 0.5, "b2": 0.999, "weight_decay": 1e-3}


class BaselineState(NamedTuple):
    """``value``: float32[], the baseline b; ``count``: int32[], its updates so far."""

    value: jax.Array
    count: jax.Array


class ReinforceState(NamedTuple):
    """The policy ``logits`` ``{kind: float[E, K]}``, its optimizer state and the baseline."""

    logits: dict
    opt_state: optax.OptState
    baseline: BaselineState


def reinforce_optimizer(optim_alpha: Mapping | None = None,
                        clip_norm: float = 5.0) -> optax.GradientTransformation:
    """Clipping to global norm ``clip_norm``, then the ``optim_alpha`` rule (an "adam" config
    mapping; fields not given take TND-NAS's values ``TND_ADAM``)."""
    if isinstance(clip_norm, bool) or not isinstance(clip_norm, numbers.Real) or clip_norm <= 0:
        raise ValueError(f"clip_norm must be a number > 0 (5 in TND-NAS), got {clip_norm!r}.")
    rule = update_rule({**TND_ADAM, **(optim_alpha or {})}, ("adam",))
    return optax.chain(optax.clip_by_global_norm(clip_norm), rule)


def init_reinforce(logits: Mapping, tx: optax.GradientTransformation) -> ReinforceState:
    """The state at the first update of a stage: ``tx``'s state, no baseline yet."""
    baseline = BaselineState(jnp.zeros((), jnp.float32), jnp.zeros((), jnp.int32))
    return ReinforceState(dict(logits), tx.init(dict(logits)), baseline)


def sample_paths(key, logits: Mapping, num_samples: int) -> dict:
    """``num_samples`` paths from the policy: ``{kind: int32[M, E]}``, every edge's operation
    drawn from ``softmax(logits[kind][e])`` independently."""
    if isinstance(num_samples, bool) or not isinstance(num_samples, numbers.Integral) \
            or num_samples < 1:
        raise ValueError(f"The number of sampled paths M must be an integer >= 1 (10 in "
                         f"TND-NAS), got {num_samples!r}.")
    keys = jax.random.split(key, len(logits))
    return {kind: jax.random.categorical(k, logits[kind], shape=(num_samples,)
                                         + logits[kind].shape[:-1]).astype(jnp.int32)
            for k, kind in zip(keys, sorted(logits))}


def log_prob(logits: Mapping, paths: Mapping) -> jax.Array:
    """``log pi(path)``: ``paths`` ``{kind: int[..., E]}`` -> float[...]."""
    return path_sum({kind: jax.nn.log_softmax(x, axis=-1) for kind, x in logits.items()}, paths)


def surrogate_loss(logits: Mapping, paths: Mapping, advantages: jax.Array) -> jax.Array:
    """``-mean_m stop_gradient(advantages[m]) * log pi(paths[m])``; ``advantages`` float[M],
    ``paths`` ``{kind: int[M, E]}``."""
    return -jnp.mean(jax.lax.stop_gradient(advantages) * log_prob(logits, paths))


def update_baseline(state: BaselineState, mean_reward: jax.Array, step: float) -> BaselineState:
    """b = mean_reward at the first update, then b += step * (mean_reward - b)."""
    value = jnp.where(state.count == 0, mean_reward,
                      state.value + step * (mean_reward - state.value))
    return BaselineState(value.astype(jnp.float32), state.count + 1)


def reinforce_update(state: ReinforceState, paths: Mapping, rewards: jax.Array, *,
                     tx: optax.GradientTransformation, baseline_step: float | None = 0.95):
    """One policy-gradient step on ``rewards`` float[M] of ``paths`` ``{kind: int[M, E]}``.

    Returns ``(state, info)``, ``info = {"baseline": b used, "grad_norm": the surrogate's gradient
    norm before clipping}``. ``tx`` and ``baseline_step`` are static (close over them under jit).
    """
    if baseline_step is not None and (isinstance(baseline_step, bool)
                                      or not isinstance(baseline_step, numbers.Real)
                                      or not 0 < baseline_step <= 1):
        raise ValueError(f"baseline_step must be None (no baseline) or in (0, 1] (0.95 in the "
                         f"author's code), got {baseline_step!r}.")
    _check_shapes(state.logits, paths, rewards)
    rewards = jnp.asarray(rewards, jnp.float32)
    baseline, b = state.baseline, jnp.zeros((), jnp.float32)
    if baseline_step is not None:
        baseline = update_baseline(baseline, jnp.mean(rewards), baseline_step)
        b = baseline.value
    grads = jax.grad(surrogate_loss)(state.logits, paths, rewards - b)
    updates, opt_state = tx.update(grads, state.opt_state, state.logits)
    logits = optax.apply_updates(state.logits, updates)
    return (ReinforceState(logits, opt_state, baseline),
            {"baseline": b, "grad_norm": optax.tree.norm(grads)})


def _check_shapes(logits, paths, rewards):
    """A ValueError naming the mismatch unless rewards is [M] and paths[kind] is [M, E]."""
    num = jnp.shape(rewards)
    shapes = {kind: jnp.shape(paths[kind]) if kind in paths else None for kind in logits}
    expected = {kind: num + x.shape[:-1] for kind, x in logits.items()}
    if len(num) != 1 or shapes != expected or set(paths) != set(logits):
        raise ValueError(f"reinforce_update needs rewards [M] and paths {{kind: [M, E]}} for the "
                         f"logits' kinds; got rewards {num} and paths "
                         f"{ {k: jnp.shape(v) for k, v in paths.items()} } for logits "
                         f"{ {k: x.shape for k, x in logits.items()} }.")
