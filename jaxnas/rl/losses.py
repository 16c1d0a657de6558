"""The actor-critic objectives of DDAS (DDPG, spec 001 Eqs. 3.4-3.5) and CADAM (Eqs. 4.4-4.6),
as pure losses to differentiate with ``jax.grad``, plus the soft target update.

- ``td_critic_loss`` (Eq. 3.4): (1/B) sum_i (r_i + gamma Q'(s'_i, mu'(s'_i)) - Q(s_i, a_i))^2,
  the target held constant (stop-gradient), gamma 0.99, no episode ends; the thesis's form,
  without DeepRL's 1/2 (ambiguity 4).
- ``actor_loss`` (Eqs. 3.5 / 4.5, maximized, ambiguity 4): -(1/B) sum_i Q(s_i, mu(s_i)).
- ``check_loss`` and ``quantile_critic_loss`` (Eq. 4.4): u = r - Q(a), rho_tau(u) = u (tau -
  1(u < 0)); no target networks, no bootstrap (ambiguity 17); the constant that minimizes the mean
  check loss over a sample is its tau-quantile.
- ``soft_update``: theta' <- tau theta + (1 - tau) theta', tau 1e-3 every step (DDAS).
- ``num_cycles`` (Eq. 4.6): C = min(floor(|R| / |B_R|), C_max).

``critic_apply`` and ``actor_apply`` are ``module.apply``-like: ``critic_apply(params, s, a) ->
float[B]`` (DDAS), ``critic_apply(params, a) -> float[B]`` (CADAM), ``actor_apply(params, s) ->
a``. Close over them (and gamma, tau) under ``jax.jit``.
"""

from typing import Any, Callable

import jax
import jax.numpy as jnp

from jaxnas.rl._checks import check_integer, check_real
from jaxnas.rl.replay import Transition


def td_critic_loss(critic_params: Any, target_critic_params: Any, target_actor_params: Any,
                   batch: Transition, *, critic_apply: Callable, actor_apply: Callable,
                   gamma: float = 0.99) -> jax.Array:
    """Eq. 3.4 on ``batch`` = ``Transition(s [B, *S], a [B, *A], r [B], s' [B, *S])``; the
    gradient flows into ``critic_params`` only."""
    check_real("gamma (the discount)", gamma, 0, 1, "[]", "0.99 in DDAS")
    if batch.next_state is None:
        raise ValueError("td_critic_loss bootstraps from next_state; the batch has none (CADAM's "
                         "critic uses quantile_critic_loss instead).")
    next_q = critic_apply(target_critic_params, batch.next_state,
                          actor_apply(target_actor_params, batch.next_state))
    target = jax.lax.stop_gradient(batch.reward + gamma * next_q)
    q = critic_apply(critic_params, batch.state, batch.action)
    _check_values("td_critic_loss", q, batch.reward)
    return jnp.mean(jnp.square(target - q))


def actor_loss(actor_params: Any, states: jax.Array, *, actor_apply: Callable,
               q: Callable[[jax.Array, jax.Array], jax.Array]) -> jax.Array:
    """-(1/B) sum_i q(s_i, mu(s_i)): Eq. 3.5 / 4.5 as a loss to descend. ``q(states, actions) ->
    float[B]`` closes over the critic's parameters: DDAS ``lambda s, a: critic.apply(p, s, a)``,
    CADAM ``lambda s, a: critic.apply(p, a)``."""
    return -jnp.mean(q(states, actor_apply(actor_params, states)))


def check_loss(u: jax.Array, tau: float) -> jax.Array:
    """The quantile check function rho_tau(u) = u (tau - 1(u < 0)), element-wise, >= 0;
    tau in (0, 1) (0.9 on NB201, 0.95 on DARTS in CADAM)."""
    check_real("tau (the quantile level)", tau, 0, 1, "()", "0.9 or 0.95 in CADAM")
    u = jnp.asarray(u)
    return u * (tau - (u < 0).astype(u.dtype))


def quantile_critic_loss(critic_params: Any, batch: Transition, *, critic_apply: Callable,
                         tau: float) -> jax.Array:
    """Eq. 4.4: (1/B) sum_i rho_tau(r_i - Q(a_i)) on ``batch`` (``action`` [B, *A], ``reward``
    [B]; the state is not used). Its gradient w.r.t. Q(a_i) is -tau/B where u_i > 0 and
    (1 - tau)/B where u_i < 0."""
    q = critic_apply(critic_params, batch.action)
    _check_values("quantile_critic_loss", q, batch.reward)
    return jnp.mean(check_loss(batch.reward - q, tau))


def soft_update(params: Any, target_params: Any, tau: float = 1e-3) -> Any:
    """tau * params + (1 - tau) * target_params, leaf by leaf (tau = 1 copies ``params``)."""
    check_real("tau (the target mixing rate)", tau, 0, 1, "(]", "1e-3 every step in DDAS")
    return jax.tree.map(lambda p, t: tau * p + (1 - tau) * t, params, target_params)


def num_cycles(replay_size, batch_size: int, max_cycles: int) -> jax.Array:
    """Eq. 4.6, int32[]: min(replay_size // batch_size, max_cycles); 0 while the replay holds
    fewer than a batch. ``replay_size`` may be traced (``Replay.size``)."""
    check_integer("The replay batch size |B_R|", batch_size, 1, "8 on NB201, 64 on DARTS")
    check_integer("C_max (the update cycles per step)", max_cycles, 1,
                  "10 on NB201, 1 on DARTS in CADAM")
    return jnp.minimum(jnp.asarray(replay_size, jnp.int32) // batch_size, max_cycles)


def _check_values(name, q, reward):
    if jnp.shape(q) != jnp.shape(reward):
        raise ValueError(f"{name}: the critic returned Q of shape {list(jnp.shape(q))} for "
                         f"rewards of shape {list(jnp.shape(reward))}; the critic must return "
                         f"one value per transition, float[B].")
