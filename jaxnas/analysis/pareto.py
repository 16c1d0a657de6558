"""Pareto fronts of results that trade a cost (parameters, latency) against a score (accuracy)."""

import numpy as np


def pareto_front(costs, scores) -> np.ndarray:
    """The indices of the non-dominated points, by increasing cost: point i is dominated when
    another has a cost <= and a score >= with one of them strict. ``costs``, ``scores``: [N].
    Points equal in both are all kept."""
    costs, scores = np.asarray(costs, float), np.asarray(scores, float)
    if costs.shape != scores.shape or costs.ndim != 1:
        raise ValueError(f"costs and scores must be two [N] arrays, got shapes {costs.shape} "
                         f"and {scores.shape}.")
    kept = [i for i in range(len(costs))
            if not np.any((costs <= costs[i]) & (scores >= scores[i])
                          & ((costs < costs[i]) | (scores > scores[i])))]
    return np.array(sorted(kept, key=lambda i: (costs[i], -scores[i])), dtype=int)
