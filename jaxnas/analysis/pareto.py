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


def fronts(points: list[dict], costs=("flops", "params"), score: str = "val_accuracy") -> dict:
    """``{cost: [indices of the front of (cost, score)]}`` over ``points`` (dicts holding the
    costs and the score), by increasing cost."""
    return {cost: pareto_front([p[cost] for p in points], [p[score] for p in points]).tolist()
            for cost in costs}


def highest_score(points: list[dict], score: str = "val_accuracy") -> int:
    """The selector "highest validation accuracy among all sampled" (DDAS, spec 001 ambiguity
    24): the index of the first point of the highest score."""
    if not points:
        raise ValueError("No points to select from; the run visited no architecture.")
    return int(np.argmax([p[score] for p in points]))


def best_retrained(points: list[dict], front: list[int], retrained: dict) -> int:
    """The selector "absolute best performing" (ambiguity 24): of the front's points (indices
    ``front``) that were re-trained, the one of the highest re-trained accuracy;
    ``retrained`` maps a point's ``"genotype"`` string to that accuracy."""
    scored = [i for i in front if points[i]["genotype"] in retrained]
    if not scored:
        raise ValueError(f"None of the {len(front)} front architectures has a re-trained "
                         f"accuracy; re-train them (experiments.train) and pass their "
                         f"accuracies keyed by genotype string.")
    return max(scored, key=lambda i: retrained[points[i]["genotype"]])
