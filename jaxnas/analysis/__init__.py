"""Analysis of searches and their results: rank correlations, cell shape metrics, Pareto
fronts."""

from jaxnas.analysis.cells import (
    cell_depth,
    l0_depth,
    nb201_depth,
    nb201_skip_count,
    skip_count,
    skip_ratio,
)
from jaxnas.analysis.pareto import pareto_front
from jaxnas.analysis.ranking import kendall_tau, stability_tau

__all__ = [
    "cell_depth",
    "kendall_tau",
    "l0_depth",
    "nb201_depth",
    "nb201_skip_count",
    "pareto_front",
    "skip_count",
    "skip_ratio",
    "stability_tau",
]
