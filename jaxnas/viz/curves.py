"""Curves of a run: its architecture weights over the search, and its training metrics.

Both read the run's ``metrics.jsonl``: one JSON object per logged step, always with ``"step"``.
Records that share a step are merged (a later value wins: a resumed run logs again the steps after
its last checkpoint); records without a step are skipped, and so is a last line cut short by a
killed run.
"""

import math
import os
from typing import Callable, Mapping, Sequence

import numpy as np

from jaxnas.analysis.pareto import pareto_front
from jaxnas.files import read_jsonl
from jaxnas.spaces.genotypes import DARTS_EDGES, NB201_EDGES
from jaxnas.viz.cells import new_figure, node_label, op_color, save_figure

ArchWeightHistory = list[tuple[int, dict[str, np.ndarray]]]

_MARKED = 40  # series with at most this many points are drawn with markers
_LEGEND_COLUMNS = 5


def _read_records(path: str | os.PathLike) -> list[dict]:
    """The records of a ``metrics.jsonl`` file, merged by step, in step order."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No metrics file {path!r}; a run writes metrics.jsonl into its "
                                f"workdir, check the path.")
    by_step = {}
    for _, record in read_jsonl(path)[0]:
        if "step" in record:
            by_step.setdefault(int(record["step"]), {}).update(record)
    return [by_step[step] for step in sorted(by_step)]


def load_arch_weight_history(metrics_jsonl_path: str | os.PathLike) -> ArchWeightHistory:
    """``[(step, {key: weights [E, K]}), ...]`` from the records of a ``metrics.jsonl`` that hold
    ``"arch_weights": {key: [[...], ...]}``, in step order; ``[]`` when none does."""
    history = []
    for record in _read_records(metrics_jsonl_path):
        if "arch_weights" not in record:
            continue
        weights = {}
        for key, value in record["arch_weights"].items():
            weights[key] = np.asarray(value, dtype=float)
            if weights[key].ndim != 2:
                raise ValueError(
                    f"arch_weights[{key!r}] at step {record['step']} of "
                    f"{os.fspath(metrics_jsonl_path)!r} has shape {weights[key].shape}; expected "
                    f"[edges, ops].")
        history.append((int(record["step"]), weights))
    return history


def _edge_names(key: str, num_edges: int) -> list[str]:
    """Names of the edges of a known cell: NB201 ("cell", 6 edges) or DARTS ("normal"/"reduce",
    14 edges); ``edge i`` otherwise."""
    if key == "cell" and num_edges == len(NB201_EDGES):
        space, edges = "nb201", NB201_EDGES
    elif key in ("normal", "reduce") and num_edges == len(DARTS_EDGES):
        space, edges = "darts", DARTS_EDGES
    else:
        return [f"edge {i}" for i in range(num_edges)]
    return [f"{node_label(space, src)} → {node_label(space, dst)}" for src, dst in edges]


def _keyed_path(path: str, key: str) -> str:
    stem, ext = os.path.splitext(path)
    return f"{stem}_{key}{ext}"


def plot_arch_weights(history: Sequence[tuple[int, Mapping[str, np.ndarray]]],
                      path: str | os.PathLike, ops: Sequence[str] | Mapping[str, Sequence],
                      edge_names: Sequence[str] | None = None,
                      title: str | None = None) -> list[str]:
    """Plots architecture weights over a search: one subplot per edge, one line per op.

    ``history``: ``[(step, {key: weights [E, K]}), ...]`` with keys such as "cell", "normal",
    "reduce" and weights after the strategy's activation (in [0, 1]); ``ops``: the K operation
    names, or ``{key: ((op, ...) per edge)}`` when edges hold different ones (a staged search's
    ``space.cell_ops()``); ``edge_names``: E subplot titles (default: the edges of the NB201 or DARTS cell when E
    matches, else ``edge i``). Writes one figure per key: ``path`` itself for a single key, else
    ``path`` with ``_key`` before the extension. Returns the paths written.
    """
    path = os.fspath(path)
    if not history:
        raise ValueError("The architecture weight history is empty: nothing to plot. Log "
                         "'arch_weights' in metrics.jsonl (see load_arch_weight_history).")
    history = sorted(history, key=lambda entry: entry[0])
    keys = list(history[0][1])
    steps = np.array([step for step, _ in history])
    written = []
    for key in keys:
        try:
            series = np.stack([np.asarray(weights[key], dtype=float) for _, weights in history])
        except KeyError:
            raise ValueError(
                f"Every history entry needs the keys {keys}; one lacks {key!r}.") from None
        except ValueError as e:
            raise ValueError(f"The {key!r} weights change shape during the history: {e}.") from None
        edge_ops = ([tuple(names) for names in ops[key]] if isinstance(ops, Mapping)
                    else [tuple(ops)] * series.shape[1])
        num_ops = len(edge_ops[0]) if edge_ops else 0
        if series.ndim != 3 or series.shape[1:] != (len(edge_ops), num_ops):
            raise ValueError(f"The {key!r} weights have shape {series.shape[1:]}; expected "
                             f"[{len(edge_ops)}, {num_ops}] to match the operations "
                             f"{edge_ops[0] if edge_ops else ()} of each edge.")
        finite = series[np.isfinite(series)]
        if finite.size and (finite.min() < -1e-6 or finite.max() > 1 + 1e-6):
            raise ValueError(
                f"The {key!r} weights range over [{finite.min():.3g}, {finite.max():.3g}]; plot "
                f"the weights after the strategy's activation (e.g. softmax), which lie in [0, 1].")
        names = list(edge_names) if edge_names is not None else _edge_names(key, series.shape[1])
        if len(names) != series.shape[1]:
            raise ValueError(f"Got {len(names)} edge names for the {series.shape[1]} edges of "
                             f"{key!r}.")
        heading = title or "architecture weights"
        if len(keys) > 1 or title is None:
            heading = f"{heading} ({key})"
        out = path if len(keys) == 1 else _keyed_path(path, key)
        _plot_weight_grid(steps, series, edge_ops, names, heading, out)
        written.append(out)
    return written


def _plot_weight_grid(steps, series, edge_ops, names, heading, path):
    """series: [T, E, K] weights at ``steps`` [T]; ``edge_ops``: the K operation names of each
    edge. A fixed layout in inches (constrained layout costs a second per figure of this many
    subplots)."""
    num_edges = series.shape[1]
    ops = tuple(dict.fromkeys(op for names in edge_ops for op in names))  # the legend's
    cols = math.ceil(math.sqrt(num_edges))
    rows = math.ceil(num_edges / cols)
    legend_rows = math.ceil(len(ops) / _LEGEND_COLUMNS)
    left, right, top, bottom = 0.65, 0.15, 0.6, 0.55 + 0.25 * legend_rows
    width, height = left + right + 2.5 * cols, top + bottom + 2.0 * rows
    marker = "." if len(steps) <= _MARKED else None
    with new_figure(figsize=(width, height)) as fig:
        fig.subplots_adjust(left=left / width, right=1 - right / width, top=1 - top / height,
                            bottom=bottom / height, wspace=0.1, hspace=0.4)
        axes = []
        for e in range(num_edges):
            ax = fig.add_subplot(rows, cols, e + 1, sharex=axes[0] if axes else None,
                                 sharey=axes[0] if axes else None)
            for k, op in enumerate(edge_ops[e]):
                ax.plot(steps, series[:, e, k], color=op_color(op), lw=1.6, marker=marker,
                        ms=4, ls="--" if op == "none" else "-", label=op)
            ax.set_title(names[e], fontsize=10)
            ax.set_ylim(-0.03, 1.03)
            ax.grid(alpha=0.3)
            last_row, first_col = e + cols >= num_edges, e % cols == 0
            ax.tick_params(labelsize=8, labelbottom=last_row, labelleft=first_col)
            if last_row:
                ax.set_xlabel("step", fontsize=9)
            if first_col:
                ax.set_ylabel("weight", fontsize=9)
            axes.append(ax)
        fig.suptitle(heading, fontsize=12, fontweight="bold", y=1 - 0.12 / height, va="top")
        handles = {}
        for ax in axes:  # every operation once, whichever edges hold it
            for handle, label in zip(*ax.get_legend_handles_labels()):
                handles.setdefault(label, handle)
        fig.legend([handles[op] for op in ops], ops, loc="lower center",
                   ncols=min(len(ops), _LEGEND_COLUMNS), fontsize=9, frameon=False)
        save_figure(fig, path)


def _group(metrics: Sequence[str]) -> list[tuple[str, list[str]]]:
    """Panels: the losses together, the accuracies together, every other metric alone."""
    losses = [m for m in metrics if "loss" in m.lower()]
    accuracies = [m for m in metrics if "acc" in m.lower() and m not in losses]
    panels = [("loss", losses), ("accuracy", accuracies)]
    panels += [(m, [m]) for m in metrics if m not in losses + accuracies]
    return [(name, members) for name, members in panels if members]


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def plot_training_curves(metrics_jsonl_path: str | os.PathLike, path: str | os.PathLike,
                         keys: Sequence[str] | None = None,
                         keep: Callable[[dict], bool] | None = None) -> str:
    """Plots a run's numeric metrics against the step, from its ``metrics.jsonl``.

    One subplot for the losses (every metric named ``*loss*``), one for the accuracies
    (``*acc*``), one for each other metric (``lr``...). ``keys`` picks the metrics (default: every
    numeric one), ``keep`` the records (default: all). Records lacking a metric leave a gap;
    non-numeric fields are ignored. Returns ``path``.
    """
    source = os.fspath(metrics_jsonl_path)
    records = [r for r in _read_records(source) if keep is None or keep(r)]
    available = list(dict.fromkeys(k for r in records for k, v in r.items()
                                   if k != "step" and _is_number(v)))
    if not available:
        raise ValueError(f"{source!r} holds no numeric metric besides 'step' ({len(records)} "
                         f"records with a step); nothing to plot.")
    if keys is not None:
        unknown = [k for k in keys if k not in available]
        if unknown:
            raise ValueError(f"No numeric metric {unknown} in {source!r}; it has {available}.")
    panels = _group(available if keys is None else list(keys))
    cols = 1 if len(panels) <= 3 else 2
    rows = math.ceil(len(panels) / cols)
    run = os.path.basename(os.path.dirname(os.path.abspath(source)))
    with new_figure(figsize=(6.0 * cols, 2.6 * rows + 0.5), layout="constrained") as fig:
        axes = []
        for i, (name, members) in enumerate(panels):
            ax = fig.add_subplot(rows, cols, i + 1, sharex=axes[0] if axes else None)
            for metric in members:
                points = [(r["step"], r[metric]) for r in records if _is_number(r.get(metric))]
                steps, values = zip(*points)
                ax.plot(steps, values, lw=1.5, label=metric,
                        marker="." if len(points) <= _MARKED else None)
            ax.set_title(name if len(members) > 1 else members[0], fontsize=10)
            ax.grid(alpha=0.3)
            ax.tick_params(labelsize=8)
            if i + cols >= len(panels):
                ax.set_xlabel("step", fontsize=9)
            if len(members) > 1:
                ax.legend(fontsize=8)
            axes.append(ax)
        fig.suptitle(f"training curves: {run}", fontsize=12, fontweight="bold")
        return save_figure(fig, path)


def plot_alpha_schedule(metrics_jsonl_path: str | os.PathLike, path: str | os.PathLike) -> str:
    """When the architecture moved, against the FIMT statistic (constrained DARTS's Fig. 5).

    Top (when the run logged ``fimt/*``): the squared weight-gradient norm, its EWMA and the
    threshold tau, log scale. Bottom: architecture updates per step between consecutive logged
    steps, from the cumulative ``arch/alpha_updates`` (with ``log_every=1``, each bar is one
    step: 1 where the architecture moved). Returns ``path``.
    """
    source = os.fspath(metrics_jsonl_path)
    records = [r for r in _read_records(source) if _is_number(r.get("arch/alpha_updates"))]
    if not records:
        raise ValueError(f"{source!r} holds no 'arch/alpha_updates'; nothing to plot.")
    steps = np.array([r["step"] for r in records], float)
    counts = np.array([r["arch/alpha_updates"] for r in records], float)
    starts = np.concatenate([[0.0], steps[:-1]])
    rates = np.diff(np.concatenate([[0.0], counts])) / np.maximum(steps - starts, 1.0)
    fimt = [k for k in ("fimt/statistic", "fimt/ewma", "fimt/tau")
            if any(_is_number(r.get(k)) for r in records)]
    rows = 2 if fimt else 1
    with new_figure(figsize=(8.0, 2.8 * rows + 0.5), layout="constrained") as fig:
        axes = []
        if fimt:
            ax = fig.add_subplot(rows, 1, 1)
            for key, width in zip(fimt, (0.8, 1.8, 1.8)):
                points = [(r["step"], r[key]) for r in records
                          if _is_number(r.get(key)) and r[key] > 0]
                if points:
                    ax.plot(*zip(*points), lw=width, label=key.split("/")[1])
            ax.set_yscale("log")
            ax.set_title("FIMT statistic (squared weight-gradient norm), EWMA and threshold",
                         fontsize=10)
            ax.legend(fontsize=8)
            ax.grid(alpha=0.3)
            axes.append(ax)
        ax = fig.add_subplot(rows, 1, rows, sharex=axes[0] if axes else None)
        ax.bar(starts, rates, width=steps - starts, align="edge", color="tab:red", alpha=0.7)
        ax.set_ylim(0, 1.05)
        ax.set_title(f"architecture updates per step ({int(counts[-1])} in "
                     f"{int(steps[-1])} steps)", fontsize=10)
        ax.set_xlabel("step", fontsize=9)
        ax.grid(alpha=0.3)
        fig.suptitle("when the architecture moved", fontsize=12, fontweight="bold")
        return save_figure(fig, path)


def plot_pareto(points: Sequence[tuple[float, float, str]], path: str | os.PathLike,
                xlabel: str = "parameters (M)", ylabel: str = "accuracy (%)",
                title: str = "accuracy against parameters") -> str:
    """A scatter of ``(cost, score, label)`` points (one per run) with their Pareto front (lower
    cost, higher score) drawn as a step line and its points ringed. Returns ``path``."""
    if not points:
        raise ValueError("No points to plot; give one (cost, score, label) per run.")
    costs, scores, labels = zip(*points)
    front = pareto_front(costs, scores)
    with new_figure(figsize=(6.5, 4.5), layout="constrained") as fig:
        ax = fig.add_subplot(1, 1, 1)
        ax.scatter(costs, scores, color="tab:blue", zorder=3)
        for cost, score, label in points:
            ax.annotate(label, (cost, score), textcoords="offset points", xytext=(5, 4),
                        fontsize=8)
        ax.step([costs[i] for i in front], [scores[i] for i in front], where="post",
                color="tab:red", lw=1.4, label="Pareto front")
        ax.scatter([costs[i] for i in front], [scores[i] for i in front], s=120,
                   facecolors="none", edgecolors="tab:red", zorder=4)
        ax.set_xlabel(xlabel, fontsize=9)
        ax.set_ylabel(ylabel, fontsize=9)
        ax.set_title(title, fontsize=11)
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
        return save_figure(fig, path)
