"""Rank correlations for ranking studies: Kendall's tau-b and the s-tau stability of rankings.

Typical use: score a set of architectures by the supernet (inherited weights) and by the
benchmark, and compare the two rankings with `kendall_tau`; repeat the search N times and measure
how stable its rankings are with `stability_tau` (Zhang thesis, Sec 2.4.4). Both take scores
(higher or lower is better, it does not matter as long as it is the same for both) or ranks:
tau depends only on the order of the values.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


def _as_scores(values: Sequence[float], name: str) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1:
        raise ValueError(f"{name} must be a 1-D sequence of scores, got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains NaN or infinite values at positions "
                         f"{np.flatnonzero(~np.isfinite(array))[:10].tolist()}; rank only finite "
                         f"scores")
    return array


def _tied_pairs(array: np.ndarray) -> int:
    """Number of pairs i < j with array[i] == array[j]."""
    counts = np.unique(array, return_counts=True)[1].astype(np.int64)
    return int(np.sum(counts * (counts - 1) // 2))


def kendall_tau(x: Sequence[float], y: Sequence[float]) -> float:
    """Kendall's tau-b between two score vectors of the same items.

    tau_b = (n_c - n_d) / sqrt((n_0 - t_x) (n_0 - t_y)), with n_c / n_d the numbers of concordant
    / discordant pairs, n_0 = n (n - 1) / 2 and t_x, t_y the pairs tied in x, in y. Without ties
    it is the plain tau-a; 1 for the same order, -1 for the reversed order.

    Args:
      x, y: shape (n,), n >= 2, finite.

    Raises:
      ValueError: different lengths, fewer than 2 items, non-finite values, or a constant
        vector (all items tied: tau is undefined).
    """
    x, y = _as_scores(x, "x"), _as_scores(y, "y")
    if x.shape != y.shape:
        raise ValueError(f"x and y must score the same items: lengths {x.size} and {y.size}")
    n = x.size
    if n < 2:
        raise ValueError(f"Kendall tau needs at least 2 items, got {n}")
    for name, array in (("x", x), ("y", y)):
        if np.all(array == array[0]):
            raise ValueError(f"{name} is constant (all {n} values are {array[0]}): the ranking "
                             f"has no order and Kendall tau is undefined")
    concordant_minus_discordant = 0
    for i in range(n - 1):
        concordant_minus_discordant += int(np.sum(
            np.sign(x[i + 1:] - x[i]) * np.sign(y[i + 1:] - y[i])))
    n_pairs = n * (n - 1) // 2
    denominator = np.sqrt(float(n_pairs - _tied_pairs(x)) * float(n_pairs - _tied_pairs(y)))
    return float(concordant_minus_discordant / denominator)


def stability_tau(rankings: Sequence[Sequence[float]]) -> float:
    """s-tau: the mean Kendall tau over all pairs of N rankings of the same items.

    s-tau = 2 / (N (N - 1)) * sum_{i < j} tau(R_i, R_j)   (Zhang thesis, Sec 2.4.4; N = 3 runs).

    Args:
      rankings: N >= 2 score vectors, each of shape (n,) with n >= 2; a sequence or an (N, n)
        array.
    """
    vectors = [_as_scores(r, f"rankings[{k}]") for k, r in enumerate(rankings)]
    if len(vectors) < 2:
        raise ValueError(f"s-tau compares rankings from N >= 2 runs, got {len(vectors)}")
    lengths = {v.size for v in vectors}
    if len(lengths) != 1:
        raise ValueError(f"all rankings must score the same items; got lengths "
                         f"{[v.size for v in vectors]}")
    taus = [kendall_tau(vectors[i], vectors[j])
            for i in range(len(vectors)) for j in range(i + 1, len(vectors))]
    return float(np.mean(taus))
