"""Constrained DARTS (Maile et al., "On Constrained Optimization in Differentiable NAS", seed
003; spec ``003_maile_constrained.md``): DARTS with the discretization set S in view.

Options, combined freely (Table 1's rows are combinations):

- ``activation``: "softmax" (DARTS) or "crb": clipped ReLU ``clip(alpha, 0, 1)`` with alpha
  initialized ``1/|O| + 1e-4 N(0, 1)``, ``none`` removed from the space, a non-affine batch norm
  after each node's sum (``space.node_bn``), no alpha weight decay, and a permanent pruning mask
  (``transforms.prune_nonpositive``) that also clears Adam's moments of pruned entries.
- ``schedule``: "alternating" (DARTS), "constant" (CS10 with ``ratio=10``) or "fimt" (the dynamic
  FIMT threshold, ``fimt_ewma``, ``fimt_tau0``, ``fimt_growth``); with ``ratio`` weight steps per
  architecture step the search split is ``ratio / (ratio + 1)`` (``schedules.split_fraction``).
- ``regularizer``: "none", "proximity" (Eq. 6: ``c rho_p / 2 ||a - Pi_S(a)||`` per cell type,
  unsquared unless ``proximity_squared``, c ramping 0 to 1 over the planned search) or "admm"
  (Eqs. 7-11: ``rho_a / 2 ||a - z + u||^2``, z and u updated every ``admm_period`` architecture
  steps with decay ``admm_decay``, ``z0 = a0``, ``u0 = 0``), on the activated weights ``a``.
- ``hypergradient``: any method (``options.HYPERGRADIENTS``; the paper's is first order).

Every genotype is derived by Pi_S (``space.project``) of the activated weights; when a node has
fewer live edges (or an edge no live operation) than Pi_S must choose, it completes them by the
lowest source index and warns.
"""

import dataclasses
import functools
from typing import Any

import jax
import numpy as np
import optax

from jaxnas import transforms
from jaxnas.log import logger
from jaxnas.strategies.bilevel import BilevelSearch
from jaxnas.strategies.options import hypergradient_method, update_rule
from jaxnas.strategies.relaxations import ClippedReLU, Softmax
from jaxnas.strategies.schedules import FIMT, Alternating, Constant

ACTIVATIONS = ("softmax", "crb")
SCHEDULES = ("alternating", "constant", "fimt")
REGULARIZERS = ("none", "proximity", "admm")


@dataclasses.dataclass(frozen=True)
class ConstrainedSearch(BilevelSearch):
    """A ``BilevelSearch`` that derives by Pi_S of ``space`` and reports its live operations."""

    space: Any = None

    def derive(self, arch, space):
        weights = jax.device_get(self.arch_weights(arch))
        projected = jax.device_get(space.project(weights))
        for name in sorted(weights):
            dead = np.argwhere((projected[name] > 0) & (weights[name] <= 0))
            if len(dead):
                _warn_once(f"Pi_S of the {name!r} cell had to choose {len(dead)} edge(s) without "
                           f"a live operation (rows {dead[:, 0].tolist()}); it took the lowest "
                           "source nodes.")
        return space.derive(projected)

    def arch_metrics(self, arch):
        weights = self.relaxation.weights(arch.alpha)
        allowed = np.array([op != "none" for op in self.space.ops])
        live = sum((w[:, allowed] > 0).sum() for w in jax.tree.leaves(weights))
        return {**super().arch_metrics(arch), "arch/live_ops": live}


def constrained(space, optim_alpha=None, activation: str = "softmax",
                schedule: str = "alternating", ratio: int = 10, fimt_ewma: float = 0.2,
                fimt_tau0: float = 1.0, fimt_growth: float = 1.05, regularizer: str = "none",
                rho_p: float = 0.1, proximity_squared: bool = False, rho_a: float = 0.1,
                admm_period: int = 10, admm_decay: float = 0.8, hypergradient=None):
    """The constrained-DARTS strategy for ``space`` (see the module docstring)."""
    _choose("activation", activation, ACTIVATIONS)
    _choose("schedule", schedule, SCHEDULES)
    _choose("regularizer", regularizer, REGULARIZERS)
    for name, value in (("rho_p", rho_p), ("rho_a", rho_a)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise ValueError(f"config.strategy.{name} must be a number >= 0, got {value!r}.")
    crb = activation == "crb"
    if crb and "none" in space.ops:
        raise ValueError("CRB removes the 'none' operation (spec 003 section 2.2), but "
                         f"config.space.ops is {tuple(space.ops)}; list the operations without "
                         "'none'.")
    if crb and dict(optim_alpha or {}).get("weight_decay", 1e-3):
        raise ValueError("CRB turns the alpha weight decay off (spec 003 section 2.2); set "
                         "config.optim_alpha.weight_decay=0.")
    relaxation = ClippedReLU() if crb else Softmax()
    rule = update_rule(optim_alpha, ("adam",))
    if crb:
        rule = transforms.prune_nonpositive(rule)
    try:
        if schedule == "constant":
            plan = Constant(ratio)
        elif schedule == "fimt":
            plan = FIMT(ratio, fimt_ewma, fimt_tau0, fimt_growth)
        else:
            plan = Alternating()
        if regularizer == "proximity":
            rule = optax.chain(proximity(space, relaxation, rho_p, proximity_squared), rule)
        elif regularizer == "admm":
            rule = optax.chain(transforms.admm(space.project, relaxation.weights, rho_a,
                                               admm_decay, admm_period), rule)
    except ValueError as e:
        raise ValueError(f"config.strategy: {e}") from None
    return ConstrainedSearch(hypergradient_method(hypergradient), rule, "constrained",
                             relaxation, plan, space=space)


def proximity(space, relaxation, rho: float = 0.1, squared: bool = False):
    """Proximity regularization (Eq. 6): ``c rho / 2 * sum_cells ||a - Pi_S(a)||`` (squared when
    ``squared``) on the activated weights ``a``, c the fraction of the planned search done."""

    def distance(alpha):
        a = relaxation.weights(alpha)
        z = space.project(a)
        gaps = [a[name] - z[name] for name in sorted(a)]
        if squared:
            return sum(transforms.safe_norm(g) ** 2 for g in gaps)
        return sum(transforms.safe_norm(g) for g in gaps)

    return transforms.penalty(distance, lambda progress: progress * rho / 2,
                              "arch/proximity_penalty")


@functools.lru_cache(maxsize=None)
def _warn_once(message: str) -> None:
    logger.warning(message)


def _choose(field, value, accepted):
    if value not in accepted:
        raise ValueError(f"config.strategy.{field} must be one of "
                         f"{', '.join(map(repr, accepted))}, got {value!r}.")
