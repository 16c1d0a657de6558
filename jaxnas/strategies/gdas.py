"""GDAS (Dong and Yang, CVPR 2019), as NAS-Bench-201's GDAS baseline runs it (the Zhang thesis's
Table 3.3 GDAS row comes from it).

Each step: a weight step on a train batch through one path drawn by hard Gumbel sampling of the
architecture logits (only that path computed and updated), then an architecture step on a val
batch through a second sample, whose straight-through weights carry the softmax gradient to the
logits (``relaxations.gumbel_straight_through``; the unchosen operations are not computed and
get the gradient of a constant term, as in GDAS's code: ``cells.Edge``). The Gumbel temperature
falls linearly per epoch from ``tau_max`` to ``tau_min``; the genotype is the argmax of the
logits.
"""

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxnas import transforms
from jaxnas.spaces import single_path
from jaxnas.strategies.base import step_key, tree_norm
from jaxnas.strategies.options import update_rule
from jaxnas.strategies.relaxations import Softmax, gumbel_straight_through
from jaxnas.strategies.single_path import SinglePathSearch


class GDASState(NamedTuple):
    """Attributes: alpha: logits ``{key: [E, K]}``; rule: the update rule's state; path: the
    path of the last weight step ``{key: int32 [E]}``."""

    alpha: Any
    rule: Any
    path: dict


@dataclasses.dataclass(frozen=True)
class GDASSearch(SinglePathSearch):
    """Attributes: space; rule: the logits' update rule (Adam); tau_max, tau_min: the Gumbel
    temperature's range."""

    space: Any
    rule: optax.GradientTransformation
    tau_max: float = 10.0
    tau_min: float = 0.1
    name: str = "gdas"

    def __post_init__(self):
        if not 0 < self.tau_min <= self.tau_max:
            raise ValueError(f"GDAS needs 0 < tau_min <= tau_max, got tau_min={self.tau_min!r}, "
                             f"tau_max={self.tau_max!r}.")
        object.__setattr__(self, "rule", optax.with_extra_args_support(self.rule))

    def init(self, key, arch_shapes):
        alpha = Softmax().init(key, arch_shapes)
        path = {k: jnp.argmax(a, -1).astype(jnp.int32) for k, a in alpha.items()}
        return GDASState(alpha, self.rule.init(alpha), path)

    def arch_weights(self, arch, key=None):
        """The softmax of the logits, or a hard Gumbel sample (at temperature 1: the sample's
        value does not depend on it) given a key."""
        if key is None:
            return Softmax().weights(arch.alpha)
        return self.sample(arch.alpha, key, 1.0)

    def sample(self, alpha, key, tau):
        keys = jax.random.split(key, len(alpha))
        return {name: gumbel_straight_through(k, alpha[name], tau)
                for k, name in zip(keys, sorted(alpha))}

    def tau(self, problem, step):
        return self.tau_max - (self.tau_max - self.tau_min) * problem.epoch_progress(step)

    def train_path(self, arch, key, problem, step):
        weights = self.sample(arch.alpha, key, self.tau(problem, step))
        return arch, weights, single_path.path_codes(weights)

    def update_arch(self, state, batches, problem):
        """One Adam step of the logits on a val batch, through a fresh hard sample."""
        arch, tau = state.arch, self.tau(problem, state.step)
        x_val = problem.images(step_key(state, 1), batches["val"]["image"][0])
        y_val = batches["val"]["label"][0]
        k_val = step_key(state, 4)

        def val_loss(alpha):
            loss, (_, acc) = problem.loss(state.params, state.batch_stats,
                                          self.sample(alpha, k_val, tau), x_val, y_val)
            return loss, acc

        (loss, acc), grad = jax.value_and_grad(val_loss, has_aux=True)(arch.alpha)
        updates, rule = self.rule.update(grad, arch.rule, arch.alpha,
                                         progress=problem.progress(state.step))
        metrics = {"val_loss": loss, "val_accuracy": acc, "alpha_grad_norm": tree_norm(grad),
                   "tau": jnp.asarray(tau, jnp.float32), **transforms.collect_metrics(rule)}
        return arch._replace(alpha=optax.apply_updates(arch.alpha, updates), rule=rule), metrics


def gdas(space, optim_alpha=None, tau_max: float = 10.0, tau_min: float = 0.1) -> GDASSearch:
    """The ``gdas`` registry entry; ``optim_alpha``: Adam (GDAS's 3e-4, (0.5, 0.999), 1e-3)."""
    return GDASSearch(space, update_rule(optim_alpha, ("adam",)), tau_max, tau_min)
