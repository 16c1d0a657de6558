"""ADMM regularization toward a constraint set (constrained DARTS, spec 003 section 2.5, Eqs.
7-11): the objective gets ``rho/2 ||a - z + u||^2`` with ``a = activation(params)``; every
``period`` updates ``z <- project(a + u)`` and ``u <- decay * u + a - z`` (Eq. 11)."""

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax


class ADMMState(NamedTuple):
    z: Any  # the projected copy, shaped like activation(params)
    u: Any  # the scaled dual
    count: jax.Array  # updates so far
    metrics: dict  # {"arch/admm_penalty": rho/2 ||a - z + u||^2 at the last update}


def admm(project: Callable, activation: Callable = lambda x: x, rho: float = 0.1,
         decay: float = 0.8, period: int = 10) -> optax.GradientTransformationExtraArgs:
    """ADMM's primal penalty and its z, u updates.

    ``z0 = activation(params0)``, ``u0 = 0``. The z, u update after the ``period``-th,
    ``2 period``-th... update runs at the start of the next update, where ``params`` are those
    the period ended with: the same iterates as updating at the end, from state alone.

    Args:
      project: the projection onto the constraint set, ``a -> z`` (jit-able).
      activation: ``params -> a``, where the constraint lives (the activated architecture).
      rho: the penalty weight rho_a. decay: lambda_u of Eq. 11 (1.0 is Eq. 10).
      period: parameter updates (the inner ADMM steps of Eq. 7) per z, u update.
    """
    if not rho >= 0:
        raise ValueError(f"admm: rho must be >= 0, got {rho!r}; the paper uses rho=0.1.")
    if not 0 <= decay <= 1:
        raise ValueError(f"admm: decay must be in [0, 1], got {decay!r}; the paper uses 0.8.")
    if isinstance(period, bool) or not isinstance(period, int) or period < 1:
        raise ValueError(f"admm: period must be an integer >= 1, got {period!r}; the paper "
                         "uses 10.")

    def init(params):
        a = activation(params)
        return ADMMState(a, jax.tree.map(jnp.zeros_like, a), jnp.zeros((), jnp.int32),
                         {"arch/admm_penalty": jnp.zeros((), jnp.float32)})

    def update(updates, state, params=None, **extra_args):
        del extra_args
        if params is None:
            raise ValueError("admm needs the parameters: call update(updates, state, params).")
        a = activation(params)
        refresh = (state.count > 0) & (state.count % period == 0)
        z_new = project(jax.tree.map(jnp.add, a, state.u))
        u_new = jax.tree.map(lambda u, a_, z: decay * u + a_ - z, state.u, a, z_new)
        z = jax.tree.map(lambda new, old: jnp.where(refresh, new, old), z_new, state.z)
        u = jax.tree.map(lambda new, old: jnp.where(refresh, new, old), u_new, state.u)

        def primal(p):
            gap = jax.tree.map(lambda a_, z_, u_: a_ - z_ + u_, activation(p), z, u)
            return 0.5 * rho * sum(jnp.sum(jnp.square(g)) for g in jax.tree.leaves(gap))

        value, grad = jax.value_and_grad(primal)(params)
        updates = jax.tree.map(jnp.add, updates, grad)
        return updates, ADMMState(z, u, state.count + 1,
                                  {"arch/admm_penalty": jnp.asarray(value, jnp.float32)})

    return optax.GradientTransformationExtraArgs(init, update)
