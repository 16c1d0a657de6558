"""Variational Adam: natural-gradient variational inference of a diagonal Gaussian posterior
``q = N(mu, sigma^2)`` over the parameters (BaLeNAS, Zhang thesis ch. 5; Khan et al. 2018).

The parameters the rule moves are the posterior mean ``mu``; the gradients it is given are taken
at a sample ``theta ~ q`` (``theta = mu + std * eps``, ``std`` read from the state). With ``N``
data points and prior ``N(0, I / delta)``, ``delta~ = delta / N``, the posterior precision is
``N (s + delta~)``, ``s`` a running average of a diagonal curvature estimate: the extra argument
``curvature`` when given (the mean of the squared per-sample gradients for several Monte-Carlo
samples, or an exact diagonal Hessian), else ``grad**2`` (the Gauss-Newton / gradient-magnitude
approximation, Eq. 5.22). ``s0 = (init_precision - prior_precision) / N``.

Two forms:

- ``khan2018`` (the reference implementation the thesis's code uses, the default):
  ``m <- b1 m + (1 - b1)(g + delta~ mu)``, ``s <- b2 s + (1 - b2) c``,
  ``mu <- mu - lr mhat / (sqrt(shat) + delta~)`` with Adam's bias corrections ``mhat, shat``.
- ``thesis`` (Eqs. 5.16-5.17 as printed; no square root, no bias correction):
  ``s' = (1 - lr) s + lr c``,
  ``mu' = mu - lr (g + delta~ mu) / (s' + delta~) + momentum ((s + delta~) / (s' + delta~))
  (mu - mu_prev)``.
"""

import math
import numbers
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

VADAM_FORMS = ("khan2018", "thesis")


class VadamState(NamedTuple):
    count: jax.Array  # updates so far
    m: Any  # first moment of g + delta~ mu (khan2018)
    s: Any  # running average of the curvature
    previous: Any  # mu of the update before (thesis form's momentum)
    std: Any  # posterior standard deviation 1 / sqrt(N s + delta), for the next sample
    metrics: dict  # sigma mean/min/max and the implicit Hessian-trace term 1/2 sum sigma^2 s


def _check(name, value, ok, expected):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not ok(value):
        raise ValueError(f"vadam: {name} must be {expected}, got {value!r}.")


def vadam(learning_rate: float, num_data: int, b1: float = 0.9, b2: float = 0.999,
          prior_precision: float = 1.0, init_precision: float = 1.0, momentum: float = 0.0,
          form: str = "khan2018") -> optax.GradientTransformationExtraArgs:
    """The Variational Adam rule (see the module docstring).

    Args:
      learning_rate: the step (beta_t of Eq. 5.16 in the thesis form).
      num_data: N, the number of data points of the likelihood (BaLeNAS: the examples of the
        split the architecture learns from, 25,000 for CIFAR-10's half split).
      b1, b2: the moment decays (khan2018). momentum: gamma_t of Eq. 5.16 (thesis form).
      prior_precision: delta. init_precision: the precision of q before the first update.
      form: "khan2018" or "thesis".
    """
    if form not in VADAM_FORMS:
        raise ValueError(f"vadam: form must be one of {VADAM_FORMS}, got {form!r}.")
    _check("learning_rate", learning_rate, lambda v: v > 0 and math.isfinite(v), "> 0")
    if isinstance(num_data, bool) or not isinstance(num_data, numbers.Integral) or num_data < 1:
        raise ValueError(f"vadam: num_data must be an integer >= 1, got {num_data!r}; pass the "
                         "number of examples the architecture is learned from.")
    for name, value in (("b1", b1), ("b2", b2), ("momentum", momentum)):
        _check(name, value, lambda v: 0 <= v < 1, "in [0, 1)")
    _check("prior_precision", prior_precision, lambda v: v > 0 and math.isfinite(v), "> 0")
    _check("init_precision", init_precision,
           lambda v: v >= prior_precision and math.isfinite(v),
           f">= prior_precision ({prior_precision})")
    n = float(num_data)
    delta = prior_precision / n

    def posterior(s):
        std = jax.tree.map(lambda s_: jax.lax.rsqrt(n * (s_ + delta)), s)
        leaves = jnp.concatenate([x.ravel() for x in jax.tree.leaves(std)])
        trace = 0.5 * sum(jnp.sum(jnp.square(sd) * s_)
                          for sd, s_ in zip(jax.tree.leaves(std), jax.tree.leaves(s)))
        return std, {"arch/sigma_mean": jnp.mean(leaves), "arch/sigma_min": jnp.min(leaves),
                     "arch/sigma_max": jnp.max(leaves), "arch/hessian_trace_term": trace}

    def init(params):
        s = jax.tree.map(lambda p: jnp.full_like(p, (init_precision - prior_precision) / n),
                         params)
        std, metrics = posterior(s)
        return VadamState(jnp.zeros((), jnp.int32), jax.tree.map(jnp.zeros_like, params), s,
                          params, std, metrics)

    def update(grads, state, params=None, *, curvature=None, **extra_args):
        del extra_args
        if params is None:
            raise ValueError("vadam needs the posterior mean: call update(grads, state, params).")
        if curvature is None:
            curvature = jax.tree.map(jnp.square, grads)
        count = state.count + 1
        g = jax.tree.map(lambda g_, mu: g_ + delta * mu, grads, params)
        if form == "khan2018":
            m = jax.tree.map(lambda m_, g_: b1 * m_ + (1 - b1) * g_, state.m, g)
            s = jax.tree.map(lambda s_, c: b2 * s_ + (1 - b2) * c, state.s, curvature)
            c1, c2 = 1 - b1 ** count, 1 - b2 ** count
            updates = jax.tree.map(
                lambda m_, s_: -learning_rate * (m_ / c1) / (jnp.sqrt(s_ / c2) + delta), m, s)
        else:
            m = state.m
            s = jax.tree.map(lambda s_, c: (1 - learning_rate) * s_ + learning_rate * c,
                             state.s, curvature)
            updates = jax.tree.map(
                lambda g_, s_old, s_new, mu, prev: -learning_rate * g_ / (s_new + delta)
                + momentum * (s_old + delta) / (s_new + delta) * (mu - prev),
                g, state.s, s, params, state.previous)
        std, metrics = posterior(s)
        return updates, VadamState(count, m, s, params, std, metrics)

    return optax.GradientTransformationExtraArgs(init, update)
