"""Figures of a search: derived cells, architecture weights over the search, when the
architecture moved, training curves, Pareto fronts, the best accuracy found against queries.

Every figure is drawn on its own Agg canvas (pyplot and its global state are never touched),
written atomically, and colours each operation as ``OP_COLORS`` says.
"""

from jaxnas.viz.cells import OP_COLORS, DrawnEdge, draw_cell, op_color, save_genotype_figure
from jaxnas.viz.curves import (load_arch_weight_history, plot_alpha_schedule, plot_arch_weights,
                               plot_pareto, plot_training_curves)
from jaxnas.viz.queries import plot_best_vs_queries

__all__ = [
    "OP_COLORS",
    "DrawnEdge",
    "draw_cell",
    "load_arch_weight_history",
    "op_color",
    "plot_alpha_schedule",
    "plot_arch_weights",
    "plot_best_vs_queries",
    "plot_pareto",
    "plot_training_curves",
    "save_genotype_figure",
]
