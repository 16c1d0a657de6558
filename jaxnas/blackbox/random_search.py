"""Random search (RS) on the NB201 oracle, as NAS-Bench-201 ran it: every query a cell drawn
uniformly (each edge's op uniform and independent), with replacement; the result is the best
cell by the search metric. ``distinct=True`` draws distinct cells instead
(``jaxnas.strategies.selection.random_search``).

With replacement, the best search metric after n queries has the closed form
E[max] = sum_v v (F(v)^n - F(v^-)^n) over the distinct values v of the table, F the fraction of
cells with value <= v (``expected_best``).
"""

from __future__ import annotations

import functools
import math

import jax
import numpy as np

from jaxnas.benchmarks.oracle import NUM_CELLS, NUM_EDGES, NUM_OPS, NB201Oracle
from jaxnas.blackbox.history import (History, as_key, as_seed, check_oracle, make_history,
                                    path_scores)
from jaxnas.rl._checks import check_integer
from jaxnas.spaces.paths import sample_path
from jaxnas.spaces.space import NB201Space
from jaxnas.strategies.selection import random_search


@functools.partial(jax.jit, static_argnums=1)
def _uniform_cells(key, queries):
    return jax.random.randint(key, (queries, NUM_EDGES), 0, NUM_OPS, dtype=np.int32)


def run_random_search(oracle: NB201Oracle, key_or_seed, queries: int = 500,
                      distinct: bool = False) -> History:
    """RS for ``queries`` queries. ``distinct``: no cell twice (at most 15,625 queries)."""
    check_oracle(oracle)
    check_integer("queries", queries, 1, "the number of oracle evaluations, e.g. 500")
    if not isinstance(distinct, bool):
        raise ValueError(f"distinct must be True or False, got {distinct!r}")
    if not distinct:
        return make_history(oracle, _uniform_cells(as_key(key_or_seed), queries))
    if queries > NUM_CELLS:
        raise ValueError(f"queries={queries} distinct cells exceed the {NUM_CELLS} of NB201; "
                         f"lower it or set distinct=False")
    result = random_search(path_scores(oracle), functools.partial(sample_path, NB201Space()),
                           queries, as_seed(key_or_seed))
    return make_history(oracle, np.stack([p["cell"] for p in result.paths]))


def expected_best(values, queries: int, distinct: bool = False) -> float:
    """E[best of ``queries`` uniform draws] over ``values`` float[N] (one per cell): with
    replacement (RS's default), or of distinct cells (``distinct``)."""
    v = np.sort(np.asarray(values, np.float64))
    n = len(v)
    check_integer("queries", queries, 1, "the number of draws")
    if not distinct:
        levels = np.unique(v)
        cdf = np.searchsorted(v, levels, side="right") / n
        below = np.concatenate([[0.0], cdf[:-1]])
        return float(np.sum(levels * (cdf ** queries - below ** queries)))
    if queries > n:
        raise ValueError(f"cannot draw {queries} distinct of {n} values")
    # P(the max is the k-th smallest) = C(k-1, q-1) / C(n, q), k = q..n (1-based).
    k = np.arange(queries, n + 1)
    log_p = (_log_comb(k - 1, queries - 1) - _log_comb(np.array([n]), queries))
    return float(np.sum(v[k - 1] * np.exp(log_p)))


def _log_comb(n, k):
    return np.array([math.lgamma(x + 1) - math.lgamma(k + 1) - math.lgamma(x - k + 1)
                     for x in np.asarray(n)])
