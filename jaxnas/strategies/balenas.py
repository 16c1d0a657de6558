"""BaLeNAS (Zhang thesis ch. 5; spec ``002_zhang_thesis.md`` section 4): differentiable NAS with
the Bayesian learning rule. The architecture parameters get a diagonal Gaussian posterior
``q = N(mu, sigma^2)``, learned with Variational Adam (``transforms.vadam``, forms ``khan2018``,
the default, and ``thesis``); each architecture update draws ``num_samples`` (M) samples
``theta ~ q`` and takes the hypergradient (pluggable: first order, DARTS second order, iDARTS's
Neumann) at them. The weights train at the mean. The genotype is the argmax of the mean;
``select_from_posterior`` scores posterior samples instead.

In the DARTS space, ``depth_weight`` (eta1; 0.05 in the thesis) adds the hard-concrete depth
regularizer: on the edges node i-1 -> node i the ``none`` logit becomes the logit of a gate on the
connection (``relaxations.HardConcreteDepth``), and ``eta1 * L0_depth`` (Eq. 5.20) joins the
objective.

Metrics: ``arch/sigma_mean``, ``_min``, ``_max`` and ``arch/hessian_trace_term``, the implicit
regularizer ``1/2 sum sigma^2 diag(H)`` of Eq. 5.18 with the rule's own curvature estimate s for
``diag(H)``.
"""

import dataclasses
from typing import Callable

import jax
import numpy as np
import optax

from jaxnas import transforms
from jaxnas.strategies.bilevel import BilevelSearch
from jaxnas.strategies.options import hypergradient_method, update_rule
from jaxnas.strategies.relaxations import HardConcreteDepth, Softmax

# The connections that give a DARTS cell depth (Eq. 5.19; jaxnas.analysis.l0_depth).
CHAIN_EDGES = ((2, 3), (3, 4), (4, 5))


@dataclasses.dataclass(frozen=True)
class BaLeNASSearch(BilevelSearch):
    """A ``BilevelSearch`` whose hypergradients are taken at samples of the posterior."""

    def sample_alpha(self, arch, key):
        """``theta = mu + sigma * eps``, sigma from the rule's state."""
        std = optax.tree_utils.tree_get(arch.rule, "std")
        noise = optax.tree_utils.tree_random_like(key, arch.alpha)
        return jax.tree.map(lambda mu, s, e: mu + s * e, arch.alpha, std, noise)


def balenas(space, optim_alpha=None, num_samples: int = 1, hypergradient=None,
            depth_weight: float = 0.0, depth_temperature: float = 2.0 / 3.0,
            depth_low: float = -0.1, depth_high: float = 1.1):
    """The BaLeNAS strategy for ``space`` (see the module docstring)."""
    if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 1:
        raise ValueError(f"config.strategy.num_samples (M) must be an integer >= 1, got "
                         f"{num_samples!r}; the thesis finds M=1 best.")
    if isinstance(depth_weight, bool) or not isinstance(depth_weight, (int, float)) \
            or depth_weight < 0:
        raise ValueError(f"config.strategy.depth_weight must be a number >= 0, got "
                         f"{depth_weight!r}; the thesis uses 0.05 in the DARTS space.")
    rule = update_rule(optim_alpha, ("vadam",))
    relaxation = Softmax()
    if depth_weight:
        relaxation = depth_gates(space, depth_temperature, depth_low, depth_high)
        rule = optax.chain(transforms.penalty(relaxation.depth_penalty, depth_weight,
                                              "arch/depth_penalty"), rule)
    return BaLeNASSearch(hypergradient_method(hypergradient), rule, "balenas", relaxation,
                         num_samples=num_samples)


def depth_gates(space, temperature: float, low: float, high: float) -> HardConcreteDepth:
    """The hard-concrete gates on the chain edges of a DARTS-space cell."""
    if space.name != "darts" or getattr(space, "edges", None) != "all" or "none" not in space.ops:
        raise ValueError("The depth regularizer needs the DARTS space with all 14 edges and the "
                         "'none' operation (its logit becomes the connection's); set "
                         "config.strategy.depth_weight=0 for this space.")
    if not temperature > 0 or not low < 0 < 1 < high:
        raise ValueError(f"The hard-concrete gate needs temperature > 0 and low < 0, high > 1; "
                         f"got {temperature}, {low}, {high} (Louizos et al.: 2/3, -0.1, 1.1).")
    rows = tuple(space.edge_list.index(edge) for edge in CHAIN_EDGES)
    return HardConcreteDepth(rows, space.ops.index("none"), temperature, low, high)


def select_from_posterior(strategy, arch, space, key, num_samples: int,
                          score_fn: Callable) -> tuple:
    """The best of the argmax-of-the-mean genotype and the genotypes of ``num_samples``
    posterior samples, by ``score_fn(genotype) -> float`` (higher is better; e.g. an NB201
    lookup or a training-free proxy). Returns ``(genotype, score, scored)`` with ``scored`` the
    distinct candidates and their scores, in the order drawn."""
    if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 0:
        raise ValueError(f"num_samples must be an integer >= 0, got {num_samples!r}.")
    candidates = [strategy.derive(arch, space)]
    for k in jax.random.split(key, num_samples) if num_samples else []:
        candidates.append(space.derive(jax.device_get(strategy.arch_weights(arch, k))))
    scored = {}
    for genotype in candidates:
        if str(genotype) not in scored:
            scored[str(genotype)] = (genotype, float(score_fn(genotype)))
    scored = list(scored.values())
    best = int(np.argmax([score for _, score in scored]))
    return scored[best][0], scored[best][1], scored
