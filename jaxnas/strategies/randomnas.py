"""RandomNAS (random search with weight sharing, Li and Talwalkar 2019; the Zhang thesis's
single-path baseline): the supernet is trained one uniformly sampled path per step, and the final
architecture is selected afterwards by random search or regularized evolution over paths scored
with the supernet's inherited weights on the val half (``select``).

Each step samples a path (``jaxnas.spaces.paths.sample_path``) and runs a single-path weight step
on a train batch that updates only that path's operations (``single_path.SinglePathSearch``): the
parameters, batch statistics and momentum of the other operations stay as they were, as PyTorch's
SGD leaves parameters without a gradient.
"""

import dataclasses
import functools
from typing import Any, NamedTuple

from jaxnas.spaces import paths
from jaxnas.strategies import selection
from jaxnas.strategies.options import check_choice, check_integer
from jaxnas.strategies.single_path import SinglePathSearch

SELECTIONS = ("evolution", "random")


class SampledState(NamedTuple):
    """Attributes: path: the path of the last weight step, ``{key: int32 [E]}``."""

    path: dict


@dataclasses.dataclass(frozen=True)
class Selection:
    """How the final architecture is selected from the trained supernet.

    Attributes:
      method: "evolution" (regularized evolution, NAS-Bench-201's REA) or "random".
      num_candidates: paths scored by random search; evolution scores ``population + cycles``.
      population, sample_size, cycles: regularized evolution's settings.
      eval_batches: val batches each candidate is scored on (the same batches for all).
    """

    method: str = "evolution"
    num_candidates: int = 100
    population: int = 20
    sample_size: int = 5
    cycles: int = 80
    eval_batches: int = 1

    def __post_init__(self):
        check_choice("selection", self.method, SELECTIONS)
        for name in ("num_candidates", "population", "sample_size", "eval_batches"):
            check_integer(name, getattr(self, name), 1)
        check_integer("cycles", self.cycles, 0)
        if self.sample_size > self.population:
            raise ValueError(f"config.strategy.sample_size ({self.sample_size}) exceeds "
                             f"config.strategy.population ({self.population}).")

    def run(self, space, evaluator, seed: int) -> selection.SelectionResult:
        """Runs the selection, scoring with ``evaluator.score`` (``engine.evaluate``)."""
        score = functools.partial(evaluator.score, num_batches=self.eval_batches)
        sample = functools.partial(paths.sample_path, space)
        if self.method == "random":
            return selection.random_search(score, sample, self.num_candidates, seed)
        return selection.regularized_evolution(score, sample,
                                               functools.partial(paths.mutate_path, space),
                                               self.population, self.sample_size, self.cycles,
                                               seed)


@dataclasses.dataclass(frozen=True)
class RandomNASSearch(SinglePathSearch):
    """Attributes: space: the search space (its paths and the parameters they own); selection:
    the final selection."""

    space: Any
    selection: Selection = Selection()
    name: str = "randomnas"

    val_batches = 0

    def init(self, key, arch_shapes):
        del arch_shapes
        return SampledState(paths.sample_path(self.space, key))

    def arch_weights(self, arch, key=None):
        """One-hot weights of the last trained path, or of a uniform sample given a key."""
        path = arch.path if key is None else paths.sample_path(self.space, key)
        return paths.path_weights(self.space, path)

    def train_path(self, arch, key, problem, step):
        del problem, step
        path = paths.sample_path(self.space, key)
        return arch, path, path

    def select(self, state, space, evaluator, seed):
        del state
        result = self.selection.run(space, evaluator, seed)
        return paths.path_genotype(space, result.best_path), result


def randomnas(space, optim_alpha=None, selection: str = "evolution", num_candidates: int = 100,
              population: int = 20, sample_size: int = 5, cycles: int = 80,
              eval_batches: int = 1) -> RandomNASSearch:
    """The ``randomnas`` registry entry (no architecture update rule: ``optim_alpha`` is
    unused)."""
    del optim_alpha
    return RandomNASSearch(space, Selection(selection, num_candidates, population, sample_size,
                                            cycles, eval_batches))

