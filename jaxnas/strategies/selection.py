"""Model selection: pick the best path by a score, as RandomNAS and EN²AS pick the final
architecture on inherited-weight validation accuracy (spec ``002_zhang_thesis.md``, sections 0.1
and 1.2).

Both searches run on the host over three callbacks:

- ``score(paths) -> float[N]``: higher is better; it gets a list of paths so it can batch the
  evaluation (e.g. one vmapped supernet call, or a benchmark lookup). No path is scored twice:
  scores are cached by ``path_key``. NaN scores are an error.
- ``sample(key) -> path`` and ``mutate(key, path) -> path``: jit-able, e.g.
  ``functools.partial(sample_path, space)`` and ``functools.partial(mutate_path, space)`` from
  ``jaxnas.spaces.paths``.

A run is a function of its seed: the keys are folded from ``jax.random.key(seed)``.
"""

import math
from typing import Callable, NamedTuple

import jax
import numpy as np

from jaxnas.spaces.paths import path_key

# Random search gives up on finding more distinct paths after num_candidates * (log
# num_candidates + _PATIENCE) draws: drawing n distinct paths from at least n takes more only
# with probability below exp(-_PATIENCE) (coupon collector tail bound).
_PATIENCE = 20


class SelectionResult(NamedTuple):
    """``best_path`` and ``best_score`` (the first best in evaluation order); ``paths`` (list of
    N paths) and ``scores`` (float64[N]): every candidate in the order the search took it, a path
    taken twice listed twice with its cached score; ``metric``: what the scores are."""

    best_path: dict
    best_score: float
    paths: list
    scores: np.ndarray
    metric: str = "val_accuracy"


def random_search(score: Callable, sample: Callable, num_candidates: int,
                  seed: int) -> SelectionResult:
    """The best of ``num_candidates`` distinct paths drawn uniformly (a repeat is redrawn), so
    ``num_candidates`` equal to the size of the space scores every path. All candidates are
    scored in one ``score`` call."""
    _check_int("num_candidates", num_candidates, 1)
    key = jax.random.key(seed)
    draw = jax.vmap(sample)
    candidates = {}
    for attempt in range(math.ceil(math.log(num_candidates) + _PATIENCE)):
        keys = jax.random.split(jax.random.fold_in(key, attempt), num_candidates)
        for path in _unstack(jax.device_get(draw(keys))):
            candidates.setdefault(path_key(path), path)
            if len(candidates) == num_candidates:
                paths = list(candidates.values())
                return _result(paths, _CachedScore(score)(paths))
    raise ValueError(f"random_search found only {len(candidates)} distinct paths in "
                     f"{(attempt + 1) * num_candidates} draws: num_candidates={num_candidates} "
                     f"exceeds the number of paths sample() can produce; lower it.")


def regularized_evolution(score: Callable, sample: Callable, mutate: Callable, population: int,
                          sample_size: int, cycles: int, seed: int) -> SelectionResult:
    """Regularized (aging) evolution, Real et al. 2019, Algorithm 1, as NAS-Bench-201's REA.

    ``population`` random paths are scored (in one ``score`` call); then each of ``cycles``
    cycles draws ``sample_size`` members of the population uniformly with replacement, mutates
    the best of them, scores the child, appends it to the population and removes the oldest
    member. The result is the best path ever scored, over ``population + cycles`` candidates
    (Real et al.'s C counts both).
    """
    _check_int("population", population, 1)
    _check_int("sample_size", sample_size, 1)
    if sample_size > population:
        raise ValueError(f"sample_size must be <= population, got sample_size={sample_size} "
                         f"and population={population}.")
    _check_int("cycles", cycles, 0)
    key = jax.random.key(seed)
    k_init, k_tournament, k_mutate = (jax.random.fold_in(key, i) for i in range(3))
    evaluate = _CachedScore(score)
    paths = _unstack(jax.device_get(jax.vmap(sample)(jax.random.split(k_init, population))))
    scores = list(evaluate(paths))
    # At cycle t the population is paths[t : t + population], oldest first.
    contenders = np.asarray(jax.random.randint(k_tournament, (cycles, sample_size), 0,
                                               population))
    for t in range(cycles):
        members = t + contenders[t]
        parent = paths[max(members, key=scores.__getitem__)]
        child = jax.device_get(mutate(jax.random.fold_in(k_mutate, t), parent))
        paths.append(child)
        scores.append(evaluate([child])[0])
    return _result(paths, np.asarray(scores))


class _CachedScore:
    """``score`` over lists of paths, calling it once per batch on the paths not scored yet."""

    def __init__(self, score: Callable):
        self.score = score
        self.cache = {}

    def __call__(self, paths: list) -> np.ndarray:
        keys = [path_key(path) for path in paths]
        new = {}
        for key, path in zip(keys, paths):
            if key not in self.cache:
                new.setdefault(key, path)
        if new:
            values = np.asarray(self.score(list(new.values())), dtype=np.float64)
            if values.shape != (len(new),):
                raise ValueError(f"score(paths) must return one score per path, shape "
                                 f"({len(new)},); got shape {values.shape}.")
            if np.isnan(values).any():
                raise ValueError(f"score(paths) returned NaN for the path(s) "
                                 f"{[k for k, v in zip(new, values) if np.isnan(v)][:5]}; "
                                 f"scores must be numbers (use -inf for an invalid path).")
            self.cache.update(zip(new, values.tolist()))
        return np.array([self.cache[key] for key in keys], dtype=np.float64)


def _unstack(batch: dict) -> list:
    """``{key: [N, E]}`` -> N paths ``{key: [E]}``."""
    return [{name: cells[i] for name, cells in batch.items()}
            for i in range(len(next(iter(batch.values()))))]


def _result(paths: list, scores: np.ndarray) -> SelectionResult:
    best = int(np.argmax(scores))
    return SelectionResult(paths[best], float(scores[best]), paths, scores)


def _check_int(name: str, value, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}.")
