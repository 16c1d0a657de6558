"""NSAS, novelty-search-based architecture selection against multi-model forgetting (Zhang thesis
ch. 3; spec 002 section 2), on a single-path base search (RandomNAS or GDAS).

Each step the base search samples the path ``alpha_t``; the constraint archive of M paths is
updated (Algorithm 3: until it holds M paths ``alpha_t`` is added; then ``alpha_t`` replaces the
member most similar to it, and Algorithm 2 tries ``num_draws`` paths from a FIFO of the last
``recent`` sampled paths in its place, keeping the most novel, novelty being the mean edge-match
distance to the ``k`` nearest other members); and the weight step minimizes Eq. 3.6 on the train
batch:

    L_N = (1 - beta) L(alpha_t) + beta / M sum_i L(alpha_i)

over the M constraint paths ``alpha_i`` (M + 1 forwards; only their operations are updated).
Before the archive is full the loss is ``L(alpha_t)``. The constraint-selection ablation
(Tables 3.5-3.7; the archive evolves as above in every variant):

- ``nsas``: the archive;
- ``nsas_g``: the archive's first M - 1, and a last constraint complementing ``alpha_t``'s
  operations they do not cover (``novelty.complement`` over a uniform path), so that
  Assumption 1 holds;
- ``nsas_lg``: ``alpha_{t-1}`` first, then as ``nsas_g`` with the archive's first M - 2;
- ``rg``: M uniformly random paths; ``low``: ``alpha_{t-1}`` alone; ``low_r``: ``alpha_{t-1}``
  and M - 1 random paths.

The base search selects the final architecture as it does alone (RandomNAS: evaluation;
GDAS: argmax).
"""

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jaxnas.spaces import paths
from jaxnas.strategies import novelty
from jaxnas.strategies.gdas import gdas
from jaxnas.strategies.options import check_choice, check_integer
from jaxnas.strategies.randomnas import randomnas
from jaxnas.strategies.single_path import SinglePathSearch
from jaxnas.trees import tree_stack

VARIANTS = ("nsas", "nsas_g", "nsas_lg", "rg", "low", "low_r")


class NSASState(NamedTuple):
    """Attributes: base: the base search's state (its ``path`` the current one); constraints:
    the archive of M paths; recent: the FIFO of the last sampled paths; previous: the path of the
    step before (``alpha_{t-1}``)."""

    base: Any
    constraints: novelty.Archive
    recent: novelty.Archive
    previous: dict


@dataclasses.dataclass(frozen=True)
class NSASSearch(SinglePathSearch):
    """Attributes: base: the single-path search whose paths are trained (RandomNAS or GDAS);
    size: M; beta: the constraints' share of Eq. 3.6; variant: see the module docstring; recent:
    the FIFO's length |C|; num_draws: Algorithm 2's n; k: the kNN of novelty (0: M - 1)."""

    base: SinglePathSearch
    size: int = 5
    beta: float = 0.5
    variant: str = "nsas"
    recent: int = 50
    num_draws: int = 10
    k: int = 0

    def __post_init__(self):
        check_choice("variant", self.variant, VARIANTS)
        check_integer("size", self.size, {"nsas_g": 2, "nsas_lg": 3}.get(self.variant, 1))
        check_integer("recent", self.recent, 1)
        check_integer("num_draws", self.num_draws, 0)
        if not 0.0 <= self.beta <= 1.0:
            raise ValueError(f"config.strategy.beta must be in [0, 1], got {self.beta!r}.")
        if not 0 <= self.k <= max(self.size - 1, 1):
            raise ValueError(f"config.strategy.k must be in [1, M - 1] = [1, "
                             f"{max(self.size - 1, 1)}] (the kNN among the other archive "
                             f"members; 0: M - 1), got {self.k!r}.")
        if self.space.ops[0] != "none":
            raise ValueError(f"NSAS needs 'none' as the first operation of the space, got "
                             f"{self.space.ops}.")

    @property
    def space(self):
        return self.base.space

    @property
    def name(self):
        return f"{self.base.name}_nsas"

    @property
    def val_batches(self):
        return self.base.val_batches

    @property
    def _cells(self):
        return novelty.CellEdges({key: self.space.edge_list
                                  for key in self.space.arch_shapes()})

    def init(self, key, arch_shapes):
        base = self.base.init(key, arch_shapes)
        widths = {name: shape[0] for name, shape in arch_shapes.items()}
        return NSASState(base, novelty.empty_archive(widths, self.size),
                         novelty.empty_archive(widths, self.recent), base.path)

    def arch_weights(self, arch, key=None):
        return self.base.arch_weights(arch.base, key)

    def train_path(self, arch, key, problem, step):
        base, weights, path = self.base.train_path(arch.base, key, problem, step)
        return arch._replace(base=base), weights, path

    def with_path(self, arch, path):
        return arch._replace(base=self.base.with_path(arch.base, path))

    def update_arch(self, state, batches, problem):
        base, metrics = self.base.update_arch(state.replace(arch=state.arch.base), batches,
                                              problem)
        return state.arch._replace(base=base), metrics

    def derive(self, arch, space):
        return self.base.derive(arch.base, space)

    def select(self, state, space, evaluator, seed):
        return self.base.select(state.replace(arch=state.arch.base), space, evaluator, seed)

    def weight_terms(self, arch, weights, path, key):
        """Updates the archive with ``path`` and returns Eq. 3.6's terms."""
        distance = novelty.EdgeMatch(self._cells)
        k = self.k or max(self.size - 1, 1)
        k_draw, k_fill = jax.random.split(key)
        full = arch.constraints.size >= self.size
        added = novelty.add(arch.constraints, path)
        replaced, index = novelty.replace_most_similar(arch.constraints, path, distance)
        if self.size > 1:
            replaced = novelty.greedy_novelty_replace(k_draw, replaced, arch.recent, index,
                                                      self.num_draws, k, distance)
        constraints = jax.tree.map(lambda r, a: jnp.where(full, r, a), replaced, added)
        chosen = self._constraint_paths(constraints, arch.previous, path, k_fill)
        arch = arch._replace(constraints=constraints, recent=novelty.push(arch.recent, path),
                             previous=path)
        share = jnp.where(full, self.beta, 0.0)
        terms = [(1.0 - share, weights)] + [(share / len(chosen), c) for c in chosen]
        return arch, terms

    def _constraint_paths(self, archive, previous, path, key) -> list:
        """The constraint paths of the variant (a static number of them)."""
        rows = [novelty.member(archive, i) for i in range(self.size)]
        keys = jax.random.split(key, self.size)
        randoms = [paths.sample_path(self.space, k) for k in keys]
        if self.variant == "nsas":
            return rows
        if self.variant == "rg":
            return randoms
        if self.variant == "low":
            return [previous]
        if self.variant == "low_r":
            return [previous] + randoms[1:]
        head = rows[:self.size - 1] if self.variant == "nsas_g" else \
            [previous] + rows[:self.size - 2]
        stacked = novelty.Archive(tree_stack(head), jnp.int32(len(head)))
        return head + [novelty.complement(path, stacked, randoms[0], self._cells)]


def nsas(space, optim_alpha=None, base: str = "randomnas", size: int = 5, beta: float = 0.5,
         variant: str = "nsas", recent: int = 50, num_draws: int = 10, k: int = 0,
         selection: str = "evolution", num_candidates: int = 100, population: int = 20,
         sample_size: int = 5, cycles: int = 80, eval_batches: int = 1, tau_max: float = 10.0,
         tau_min: float = 0.1) -> NSASSearch:
    """The ``nsas`` registry entry: NSAS on ``base`` ("randomnas", with its selection options, or
    "gdas", with its temperatures and ``optim_alpha``)."""
    if base == "randomnas":
        searcher = randomnas(space, None, selection, num_candidates, population, sample_size,
                             cycles, eval_batches)
    elif base == "gdas":
        searcher = gdas(space, optim_alpha, tau_max, tau_min)
    else:
        raise ValueError(f"config.strategy.base must be 'randomnas' or 'gdas', got {base!r}.")
    return NSASSearch(searcher, size, beta, variant, recent, num_draws, k)
