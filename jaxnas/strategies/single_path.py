"""Single-path searches: the supernet trained one sampled path at a time.

Each step draws the path of the weight step (``train_path``: a uniform sample, a Gumbel sample of
logits, a novelty-search update of an archive member...), lets the strategy add the paths its loss replays
(``weight_terms``: NSAS's constraints), runs one weight step on a train batch through those paths
only, updating only the operations they use (``jaxnas.spaces.single_path``), and then updates the
architecture state (``update_arch``: GDAS's logits; nothing for RandomNAS).
"""

import abc
from typing import Any

import jax
import jax.numpy as jnp

from jaxnas.spaces import single_path
from jaxnas.strategies.base import Strategy, step_key


class SinglePathSearch(Strategy):
    """The single-path step. Subclasses define ``space`` (a field), ``train_path`` and
    optionally ``weight_terms`` and ``update_arch``; their architecture state records the last
    weight step's path ``{key: int32 [E]}`` (``with_path``; by default its ``path`` field)."""

    space: Any
    single_path = True

    @abc.abstractmethod
    def train_path(self, arch, key, problem, step):
        """``(arch, weights, path)``: the architecture state after drawing (a sampler's archive
        may change), the supernet's arch weights for the weight step (operation indices, or
        straight-through one-hot weights) and its operation indices."""

    def with_path(self, arch, path):
        """``arch`` recording the path of this step's weight step."""
        return arch._replace(path=path)

    def weight_terms(self, arch, weights, path, key):
        """``(arch, [(coefficient, arch weights), ...])``: the paths the weight step's loss
        sums over (on the same batch); by default the sampled path alone."""
        del key, path
        return arch, [(1.0, weights)]

    def update_arch(self, state, batches, problem):
        """``(arch, metrics)`` after the weight step; by default nothing moves."""
        del batches, problem
        return state.arch, {}

    def step(self, state, batches, problem):
        lr = problem.weight_lr(state.opt_w)
        arch, weights, path = self.train_path(state.arch, step_key(state, 2), problem,
                                              state.step)
        arch, terms = self.weight_terms(self.with_path(arch, path), weights, path,
                                        step_key(state, 5))
        owners = single_path.op_owners(self.space, state.params)
        masks = [jax.tree.map(lambda m, c=c: m & (jnp.asarray(c) != 0),
                              single_path.path_mask(owners, single_path.path_codes(w)))
                 for c, w in terms]  # a term with coefficient 0 trains nothing
        mask = jax.tree.map(lambda *m: jnp.any(jnp.stack(m)), *masks)
        x = problem.images(step_key(state, 0), batches["train"]["image"][0])
        result = problem.weight_step(state.params, state.batch_stats, state.opt_w,
                                     [w for _, w in terms], x, batches["train"]["label"][0],
                                     step_key(state, 3), mask=mask,
                                     loss=problem.combined_loss([c for c, _ in terms]))
        state = state.replace(params=result.params, batch_stats=result.batch_stats,
                              opt_w=result.opt_w, arch=arch)
        arch, arch_metrics = self.update_arch(state, batches, problem)
        metrics = {"lr": lr, "train_loss": result.loss, "train_accuracy": result.accuracy,
                   **arch_metrics}
        return state.replace(arch=arch, step=state.step + 1), metrics
