"""The best accuracy a black-box search has found against the queries it has made."""

import os
from typing import Sequence

import numpy as np

from jaxnas.viz.cells import new_figure, save_figure


def plot_best_vs_queries(best, path: str | os.PathLike, optimum: float | None = None,
                         labels: Sequence[str] | None = None, title: str = "best found",
                         ylabel: str = "best accuracy (%)") -> str:
    """Plots ``best`` float[S, T]: the best accuracy of S searches (seeds) after queries 1..T.

    One search is one line; several are their mean with a band of ± one std (ddof 0) over the
    searches and every search as a thin line. ``optimum``, the best value in the whole space, is
    a dashed line; ``labels`` name the searches (e.g. ``seed 1``), in the legend of a single one
    and in none of several. Returns ``path``.
    """
    best = np.asarray(best, np.float64)
    if best.ndim != 2 or best.shape[0] < 1 or best.shape[1] < 1:
        raise ValueError(f"best must be float[S, T], one row of T >= 1 values per search, got "
                         f"shape {list(best.shape)}")
    if labels is not None and len(labels) != best.shape[0]:
        raise ValueError(f"{len(labels)} labels for {best.shape[0]} searches")
    queries = np.arange(1, best.shape[1] + 1)
    with new_figure(figsize=(6.5, 4.2), layout="constrained") as fig:
        ax = fig.add_subplot(1, 1, 1)
        if best.shape[0] == 1:
            ax.plot(queries, best[0], color="tab:blue", lw=1.6,
                    label=labels[0] if labels is not None else None)
        else:
            for row in best:
                ax.plot(queries, row, color="tab:blue", lw=0.5, alpha=0.35)
            mean, std = best.mean(axis=0), best.std(axis=0)
            ax.fill_between(queries, mean - std, mean + std, color="tab:blue", alpha=0.2,
                            lw=0, label="± std")
            ax.plot(queries, mean, color="tab:blue", lw=1.8,
                    label=f"mean of {best.shape[0]} searches")
        if optimum is not None:
            ax.axhline(optimum, color="black", ls="--", lw=1.0, label=f"optimum {optimum:.2f}")
        ax.set_xlabel("queries", fontsize=9)
        ax.set_ylabel(ylabel, fontsize=9)
        ax.set_title(title, fontsize=11)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8, loc="lower right")
        ax.grid(alpha=0.3)
        return save_figure(fig, path)
