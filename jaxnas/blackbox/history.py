"""The record every black-box search returns, and what the searches share.

A query is one evaluation of one cell by the oracle; a cell queried twice counts twice (spec
001, ambiguity 18: steps = queries, including repeats; NAS-Bench-201's own RS, REA and REINFORCE
also pay for every evaluation). ``History`` holds, per query t:

- ``cells`` int32[T, 6]: the queried cell (op indices, ``jaxnas.benchmarks.oracle``);
- ``accuracy`` float32[T]: its search-metric accuracy (%);
- ``best_cells`` int32[T, 6]: the best cell of queries 0..t by the search metric (the first
  one queried on ties), and ``best_accuracy``, ``best_val``, ``best_test`` float32[T]: its
  search-metric, 200-epoch validation and test accuracy. Table 4.1 reports ``best_val[-1]``
  and ``best_test[-1]``.

Every search only produces its sequence of cells; ``make_history`` derives the rest from the
oracle, so the record is the same for all of them.
"""

from __future__ import annotations

import numbers
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxnas.benchmarks.oracle import NUM_EDGES, NB201Oracle


class History(NamedTuple):
    """The per-query record of one search (numpy arrays, leading axis T = queries)."""

    cells: np.ndarray
    accuracy: np.ndarray
    best_cells: np.ndarray
    best_accuracy: np.ndarray
    best_val: np.ndarray
    best_test: np.ndarray

    @property
    def queries(self) -> int:
        return len(self.accuracy)

    @property
    def final(self) -> dict:
        """The final best cell: ``{"cell", "search", "val", "test"}``."""
        return {"cell": self.best_cells[-1].tolist(), "search": float(self.best_accuracy[-1]),
                "val": float(self.best_val[-1]), "test": float(self.best_test[-1])}

    def num_distinct(self) -> int:
        """The number of distinct cells queried."""
        return len({tuple(c) for c in self.cells.tolist()})


@jax.jit
def _history_arrays(oracle: NB201Oracle, cells):
    accuracy = oracle.search_accuracy(cells)

    def running(carry, x):
        best_value, best_index = carry
        value, index = x
        better = value > best_value  # strict: the earlier cell wins ties
        carry = (jnp.where(better, value, best_value), jnp.where(better, index, best_index))
        return carry, carry[1]

    t = jnp.arange(cells.shape[0])
    _, best_index = jax.lax.scan(running, (jnp.asarray(-jnp.inf, accuracy.dtype), 0),
                                 (accuracy, t))
    best_cells = cells[best_index]
    result = oracle(best_cells)
    return accuracy, best_cells, result.search, result.val, result.test


def make_history(oracle: NB201Oracle, cells) -> History:
    """The ``History`` of querying ``cells`` int[T, 6] in order (T >= 1). A cell outside the
    space (an op index not in 0..4) is an error."""
    cells = jnp.asarray(cells, jnp.int32)
    if cells.ndim != 2 or cells.shape[1] != NUM_EDGES or cells.shape[0] < 1:
        raise ValueError(f"make_history needs cells int[T, {NUM_EDGES}] with T >= 1, got shape "
                         f"{list(cells.shape)}")
    accuracy, best_cells, best_search, best_val, best_test = jax.device_get(
        _history_arrays(oracle.bare(), cells))
    if np.isnan(accuracy).any():
        bad = int(np.flatnonzero(np.isnan(accuracy))[0])
        raise ValueError(f"query {bad} is outside the NB201 space: cell "
                         f"{np.asarray(cells[bad]).tolist()} (op indices must be in 0..4)")
    return History(np.asarray(cells), accuracy, best_cells, best_search, best_val, best_test)


def as_key(key_or_seed) -> jax.Array:
    """A JAX PRNG key from an int seed (``jax.random.key(seed)``) or a key (returned as is)."""
    if isinstance(key_or_seed, numbers.Integral) and not isinstance(key_or_seed, bool):
        return jax.random.key(int(key_or_seed))
    if isinstance(key_or_seed, jax.Array):
        if jnp.issubdtype(key_or_seed.dtype, jax.dtypes.prng_key):
            return key_or_seed
        if key_or_seed.dtype == jnp.uint32 and key_or_seed.shape == (2,):
            return jax.random.wrap_key_data(key_or_seed)
    raise ValueError(f"key_or_seed must be an int seed or a jax.random key, got {key_or_seed!r}")


def as_seed(key_or_seed) -> int:
    """An int seed: the seed itself, or one drawn from a key (for host-side searches that take
    an int)."""
    if isinstance(key_or_seed, numbers.Integral) and not isinstance(key_or_seed, bool):
        return int(key_or_seed)
    return int(jax.random.randint(as_key(key_or_seed), (), 0, np.iinfo(np.int32).max))


def path_scores(oracle: NB201Oracle):
    """``score(paths)`` for ``jaxnas.strategies.selection``: single paths ``[{"cell": int[6]},
    ...]`` -> their search-metric accuracies, float32 [len(paths)] (host)."""

    def score(paths):
        return np.asarray(oracle.search_accuracy(np.stack([np.asarray(p["cell"])
                                                           for p in paths])))

    return score


def check_oracle(oracle) -> None:
    if not isinstance(oracle, NB201Oracle):
        raise ValueError(f"oracle must be an NB201Oracle (jaxnas.benchmarks.oracle), got "
                         f"{type(oracle).__name__}: {oracle!r}")
