"""When the architecture moves: schedules of architecture steps against weight steps.

A schedule is a pure state machine over one search step: ``decide(state, step) -> (move,
state)`` before the step's architecture update, ``observe(state, grad_sqnorm) -> state`` after its
weight steps (the squared weight-gradient norm of the last one, before clipping). ``move`` is a
traced bool, so the decision changes at run time without recompiling. A schedule that is not
``dynamic`` moves the architecture at every step (no conditional is compiled).

- ``Alternating(inner_steps, alpha_first)``: every step; T weight steps per architecture step
  (DARTS: 1, alpha first; iDARTS: T, alpha after them).
- ``Constant(ratio)``: one weight step per search step and an architecture step at every
  ``ratio``-th (constrained DARTS's CS10: ``ratio=10``).
- ``FIMT(ratio, ewma, tau0, growth)``: constrained DARTS's dynamic schedule (spec 003 section
  2.3): the architecture moves when the EWMA of the squared weight-gradient norm (the empirical
  Fisher trace) is below a threshold tau, which grows by ``growth`` after each step without a
  move and shrinks by ``growth**-ratio`` after a move; with a constant statistic that is one move
  every ``ratio + 1`` steps.
"""

import dataclasses
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp


def split_fraction(ratio: int) -> float:
    """The train fraction of the search split for ``ratio`` weight steps per architecture step:
    ``ratio / (ratio + 1)`` (spec 003 section 2.3: 10 / 11 = 90.91 %)."""
    return ratio / (ratio + 1)


class _Stateless:
    """A schedule that keeps no state."""

    def init(self):
        return ()

    def observe(self, state, grad_sqnorm):
        del grad_sqnorm
        return state

    def metrics(self, state) -> dict:
        return {}


@dataclasses.dataclass(frozen=True)
class Alternating(_Stateless):
    inner_steps: int = 1
    alpha_first: bool = True

    dynamic = False

    def __post_init__(self):
        if isinstance(self.inner_steps, bool) or not isinstance(self.inner_steps, int) \
                or self.inner_steps < 1:
            raise ValueError(f"inner_steps must be >= 1, got {self.inner_steps!r}; it counts "
                             "the weight steps per architecture step (an integer).")

    def decide(self, state, step):
        del step
        return jnp.bool_(True), state


@dataclasses.dataclass(frozen=True)
class Constant(_Stateless):
    ratio: int = 10

    inner_steps = 1
    alpha_first = True
    dynamic = True

    def __post_init__(self):
        _check_ratio(self.ratio)

    def decide(self, state, step):
        return (step + 1) % self.ratio == 0, state


class FIMTState(NamedTuple):
    statistic: jax.Array  # F_t = ||g_t||^2 of the last weight step
    ewma: jax.Array  # its EWMA, F-bar
    tau: jax.Array  # the threshold
    started: jax.Array  # whether F-bar exists (no move before it does)


@dataclasses.dataclass(frozen=True)
class FIMT:
    ratio: int = 10
    ewma: float = 0.2
    tau0: float = 1.0
    growth: float = 1.05

    inner_steps = 1
    alpha_first = True
    dynamic = True

    def __post_init__(self):
        _check_ratio(self.ratio)
        if not 0 < self.ewma <= 1:
            raise ValueError(f"The FIMT EWMA weight must be in (0, 1], got {self.ewma!r}; the "
                             "paper uses 0.2.")
        if not (self.tau0 > 0 and math.isfinite(self.tau0)):
            raise ValueError(f"The FIMT threshold tau0 must be > 0, got {self.tau0!r}.")
        if not (self.growth > 1 and math.isfinite(self.growth)):
            raise ValueError(f"The FIMT growth factor must be > 1, got {self.growth!r}; the "
                             "code uses 1.05.")

    def init(self):
        zero = jnp.zeros((), jnp.float32)
        return FIMTState(zero, zero, jnp.float32(self.tau0), jnp.bool_(False))

    def decide(self, state, step):
        del step
        move = state.started & (state.ewma < state.tau)
        factor = jnp.where(move, self.growth ** -self.ratio, self.growth)
        tau = jnp.where(state.started, state.tau * factor, state.tau)
        return move, state._replace(tau=tau.astype(jnp.float32))

    def observe(self, state, grad_sqnorm):
        statistic = jnp.asarray(grad_sqnorm, jnp.float32)
        ewma = jnp.where(state.started,
                         self.ewma * statistic + (1 - self.ewma) * state.ewma, statistic)
        return FIMTState(statistic, ewma, state.tau, jnp.bool_(True))

    def metrics(self, state) -> dict:
        return {"fimt/statistic": state.statistic, "fimt/ewma": state.ewma,
                "fimt/tau": state.tau}


def _check_ratio(ratio):
    if isinstance(ratio, bool) or not isinstance(ratio, int) or ratio < 1:
        raise ValueError(f"The schedule's ratio (weight steps per architecture step) must be "
                         f"an integer >= 1, got {ratio!r}.")
