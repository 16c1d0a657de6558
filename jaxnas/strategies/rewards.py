"""TND-NAS's multi-objective rewards (spec 000, Eq. 9 and 10), jit-able.

    Eq. 9:  R = Acc * (Params / P)^beta
    Eq. 10: R = Acc * [a * (Params / P)^beta + c * (Latency / L)^gamma],  a + c = 1

``Reward(terms)`` is Eq. 10 with any number of cost terms ``w * (cost / target)^exponent``; one
term of weight 1 is Eq. 9. The exponents are penalties, ``<= 0`` (the paper's "alpha" in Eq. 9,
``beta`` here: -0.6 on CIFAR-10; 0 rewards accuracy alone). Acc is top-1 in [0, 1] (A8); a cost
and its target share units (the raw counts of ``jaxnas.spaces.costs``, so P = 4.4M is
``4.4e6``). With one term, P only rescales R by ``P^-beta`` (A6): it sets the reward's scale,
not which architecture is preferred.
"""

import dataclasses
import math
import numbers
from typing import Mapping

import jax
import jax.numpy as jnp


@dataclasses.dataclass(frozen=True)
class CostTerm:
    """``weight * (costs[cost] / target)^exponent``: ``cost`` names an entry of the costs
    (``"params"``, ``"macs"``, ...), ``target`` > 0 is P or L, ``exponent`` <= 0 is beta or
    gamma, ``weight`` in [0, 1] is a or c."""

    cost: str
    target: float
    exponent: float
    weight: float = 1.0

    def __post_init__(self):
        _check(self, "target", lambda v: v > 0,
               "> 0 (the reference cost P or L, in the units of the cost)")
        _check(self, "exponent", lambda v: v <= 0,
               "<= 0 (a penalty: -0.6 in TND-NAS on CIFAR-10, 0 for accuracy alone)")
        _check(self, "weight", lambda v: 0 <= v <= 1, "in [0, 1] (a or c of Eq. 10)")


@dataclasses.dataclass(frozen=True)
class Reward:
    """``R = accuracy * sum_i w_i (cost_i / target_i)^exponent_i`` with ``sum_i w_i = 1``."""

    terms: tuple[CostTerm, ...]

    def __post_init__(self):
        object.__setattr__(self, "terms", tuple(self.terms))
        if not self.terms or not all(isinstance(t, CostTerm) for t in self.terms):
            raise ValueError(f"A reward needs one or more CostTerm, got {self.terms!r}.")
        names = [t.cost for t in self.terms]
        if len(set(names)) != len(names):
            raise ValueError(f"Each cost may appear in one term of a reward; got {names}.")
        total = sum(t.weight for t in self.terms)
        if not math.isclose(total, 1.0, abs_tol=1e-9):
            raise ValueError(f"The weights of the reward's terms must sum to 1 (a + c = 1 in "
                             f"Eq. 10), got {' + '.join(str(t.weight) for t in self.terms)} = "
                             f"{total}.")

    def __call__(self, accuracy: jax.Array, costs: Mapping[str, jax.Array]) -> jax.Array:
        """``accuracy`` float[...] in [0, 1]; ``costs`` ``{name: float[...]}`` -> R float[...]."""
        missing = sorted({t.cost for t in self.terms} - set(costs))
        if missing:
            raise ValueError(f"The reward needs the cost(s) {missing}; got {sorted(costs)}.")
        penalty = sum(t.weight * (costs[t.cost] / t.target) ** t.exponent for t in self.terms)
        return jnp.asarray(accuracy) * penalty


def _check(term, field, ok, expected):
    value = getattr(term, field)
    if (isinstance(value, bool) or not isinstance(value, numbers.Real)
            or not math.isfinite(value) or not ok(value)):
        raise ValueError(f"CostTerm({term.cost!r}).{field} must be {expected}, got {value!r}.")
