"""Regularized evolution (REA, Real et al. 2019) on the NB201 oracle, as NAS-Bench-201 ran it
(``exps/NAS-Bench-201-algos/R_EA.py``, ``scripts-search/NAS-Bench-201-algos/R-EA.sh``):
population 10 random cells; then per cycle a tournament of 3 members drawn with replacement, the
best one mutated (one edge's op changed: a node uniformly, one of its incoming edges uniformly, a
different op uniformly), the child evaluated and appended, the oldest member removed. The result
is the best cell ever evaluated.

It runs ``jaxnas.strategies.selection.regularized_evolution`` with the NB201 sampler and mutation
of ``jaxnas.spaces.paths``; the initial population counts as queries, so ``queries`` =
population + cycles, a repeated cell counting each time (NAS-Bench-201 paid its training time
again; spec 001 ambiguity 18).
"""

from __future__ import annotations

import functools

import numpy as np

from jaxnas.benchmarks.oracle import NB201Oracle
from jaxnas.blackbox.history import History, as_seed, check_oracle, make_history, path_scores
from jaxnas.rl._checks import check_integer
from jaxnas.spaces.paths import mutate_path, sample_path
from jaxnas.spaces.space import NB201Space
from jaxnas.strategies.selection import regularized_evolution

NB201_POPULATION = 10
NB201_SAMPLE_SIZE = 3


def run_rea(oracle: NB201Oracle, key_or_seed, queries: int = 500,
            population: int = NB201_POPULATION,
            sample_size: int = NB201_SAMPLE_SIZE) -> History:
    """REA for ``queries`` queries (>= ``population``)."""
    check_oracle(oracle)
    check_integer("queries", queries, 1, "the number of oracle evaluations, e.g. 500")
    check_integer("population", population, 1, "10 in NAS-Bench-201's REA")
    check_integer("sample_size", sample_size, 1, "the tournament size, 3 in NAS-Bench-201")
    if sample_size > population:
        raise ValueError(f"sample_size={sample_size} must be <= population={population}")
    if queries < population:
        raise ValueError(f"queries={queries} must be >= population={population}: the initial "
                         f"population is evaluated first")
    space = NB201Space()
    result = regularized_evolution(path_scores(oracle), functools.partial(sample_path, space),
                                   functools.partial(mutate_path, space), population,
                                   sample_size, queries - population, as_seed(key_or_seed))
    return make_history(oracle, np.stack([p["cell"] for p in result.paths]))
