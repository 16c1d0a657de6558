"""Exploration for DDAS and CADAM: additive action noise Z_t (Eqs. 3.1, 4.2), the
Ornstein-Uhlenbeck process of DDAS-4S, and CADAM's epsilon-greedy random actions with its cosine
schedule. Pure functions of an explicit key; shapes are static.

- ``uniform_noise``: U(-scale, scale); DDAS-NL 1e-5, CADAM's xi (1e-4 NB201, 5e-5 DARTS).
- ``gaussian_noise``: N(0, std^2); DDAS-G and 4S std 0.05 (ambiguity 8: the 0.05 is the std).
- ``ou_init`` / ``ou_step``: DeepRL's OrnsteinUhlenbeckProcess (ambiguity 9; the thesis gives no
  parameters), x_{k+1} = x_k + theta (mu - x_k) dt + sigma sqrt(dt) N(0, 1), returning x_{k+1};
  defaults theta 0.15, dt 1e-2, sigma 0.2, mu 0. Reset (``ou_init``) at every 4S burst.
- ``cosine_epsilon`` and ``epsilon_greedy``: a random action U(0, 1) in place of the actor's with
  probability epsilon (ambiguity 19: a random action carries no Z_t).
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxnas.rl._checks import check_integer, check_real


def uniform_noise(key, shape, scale: float, dtype=jnp.float32) -> jax.Array:
    """float[*shape] ~ U(-scale, scale), independent entries."""
    check_real("The uniform noise scale", scale, 0, float("inf"), "[)",
               "Z ~ U(-scale, scale); 1e-5 in DDAS-NL, 1e-4 or 5e-5 in CADAM")
    return jax.random.uniform(key, shape, dtype, -scale, scale)


def gaussian_noise(key, shape, std: float, dtype=jnp.float32) -> jax.Array:
    """float[*shape] ~ N(0, std^2), independent entries."""
    check_real("The Gaussian noise std", std, 0, float("inf"), "[)",
               "Z ~ N(0, std^2); 0.05 in DDAS-G and DDAS-4S")
    return std * jax.random.normal(key, shape, dtype)


class OUState(NamedTuple):
    """``x`` float[*shape]: the process's last value (the noise last returned)."""

    x: jax.Array


def ou_init(shape, dtype=jnp.float32, x0: float = 0.0) -> OUState:
    """A (re)started process at ``x0`` (DeepRL's ``reset_states``; 0 by default)."""
    return OUState(jnp.full(shape, x0, dtype))


def ou_step(key, state: OUState, sigma: float = 0.2, theta: float = 0.15, dt: float = 1e-2,
            mu: float = 0.0) -> tuple[jax.Array, OUState]:
    """One Euler-Maruyama step of dx = theta (mu - x) dt + sigma dW: returns ``(x_{k+1},
    state)``. As an AR(1) with a = 1 - theta dt: E x_k = mu + a^k (x_0 - mu) and, from a fixed
    x_0, Var x_k = sigma^2 dt (1 - a^{2k}) / (1 - a^2) (stationary for |a| < 1)."""
    check_real("The OU sigma", sigma, 0, float("inf"), "[)",
               "the scale of the OU noise; 0.2 in DeepRL, 'large' in DDAS-4S")
    check_real("The OU theta", theta, 0, float("inf"), "[)", "the mean reversion; 0.15 in DeepRL")
    check_real("The OU dt", dt, 0, float("inf"), "()", "the time step; 1e-2 in DeepRL")
    x = state.x
    x = x + theta * (mu - x) * dt + sigma * jnp.sqrt(dt) * jax.random.normal(key, x.shape,
                                                                            x.dtype)
    return x, OUState(x)


def cosine_epsilon(step, start: float = 1.0, end: float = 0.05, steps: int = 175) -> jax.Array:
    """float32[]: epsilon cosine-annealed from ``start`` at step 0 to ``end`` at ``steps`` and
    after (CADAM on NB201: 1.0 -> 0.05 by step 175), ``end + (start - end) (1 + cos(pi
    min(step, steps) / steps)) / 2``; ``step`` may be traced."""
    check_real("The initial epsilon", start, 0, 1, "[]", "a probability; 1.0 in CADAM")
    check_real("The final epsilon", end, 0, 1, "[]", "a probability; 0.05 in CADAM")
    check_integer("The epsilon annealing steps", steps, 1, "175 in CADAM on NAS-Bench-201")
    progress = jnp.clip(jnp.asarray(step, jnp.float32) / steps, 0.0, 1.0)
    return end + (start - end) * 0.5 * (1.0 + jnp.cos(jnp.pi * progress))


def epsilon_greedy(key, action: jax.Array, epsilon) -> tuple[jax.Array, jax.Array]:
    """``(action or a random action U(0, 1)^shape, bool[] whether random)``: random with
    probability ``epsilon`` (a float, may be traced; CADAM's random warm-up W is ``epsilon = 1``
    for t <= W, else 0). ``action`` is the actor's, noise already added."""
    coin_key, action_key = jax.random.split(key)
    explore = jax.random.uniform(coin_key) < epsilon
    random = jax.random.uniform(action_key, jnp.shape(action), jnp.result_type(action))
    return jnp.where(explore, random, action), explore
