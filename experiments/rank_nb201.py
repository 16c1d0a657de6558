"""Ranks random NAS-Bench-201 architectures by a finished search's supernet and by the benchmark.

    python -m experiments.rank_nb201 --workdir=runs/a1 --nb201_table=PATH --num_archs=50 \
        [--seed=0 --split=val --dataset=cifar10 --metric=test]

Prints the best and worst architectures by supernet accuracy next to their benchmark accuracy,
and the Kendall tau between the two rankings; writes ``WORKDIR/ranking.json`` and
``WORKDIR/ranking.png`` (benchmark accuracy against supernet accuracy).
"""

import os

import numpy as np
from absl import app, flags, logging

from jaxnas.analysis import nb201_skip_count
from jaxnas.analysis.supernet_ranking import (SPLITS, RankingResult, nb201_space_of,
                                              rank_nb201_architectures, sample_nb201_archs)
from jaxnas.benchmarks import NB201Table, parse_arch_str
from jaxnas.benchmarks.nb201 import DATASETS, METRICS
from jaxnas.engine import load_search
from jaxnas.files import write_json
from jaxnas.viz.cells import new_figure, save_figure

_WORKDIR = flags.DEFINE_string("workdir", None, "Workdir of a finished (or running) NB201 search.")
_TABLE = flags.DEFINE_string("nb201_table", None, "Path of the NAS-Bench-201 CSV table.")
_NUM_ARCHS = flags.DEFINE_integer("num_archs", 50, "Number of random architectures to rank.",
                                  lower_bound=2)
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the architecture sample.")
_SPLIT = flags.DEFINE_enum("split", "val", SPLITS, "Images the supernet is scored on: the "
                           "search's val half of the training set, or the test split.")
_DATASET = flags.DEFINE_enum("dataset", "cifar10", list(DATASETS), "Benchmark dataset.")
_METRIC = flags.DEFINE_enum("metric", "test", METRICS, "Benchmark metric (see "
                            "jaxnas.benchmarks.column_name).")
flags.mark_flags_as_required(["workdir", "nb201_table"])

CONV_OPS = ("nor_conv_1x1", "nor_conv_3x3")
SHOWN = 5  # architectures printed at each end of the ranking
LABELLED = 5  # best architectures by supernet accuracy labelled with their rank in the plot


def conv_count(arch: str) -> int:
    """Number of convolution edges (of 6) in an NB201 arch string."""
    return sum(op in CONV_OPS for op in parse_arch_str(arch))


def supernet_ranks(result: RankingResult) -> np.ndarray:
    """int (n,): 1 for the highest supernet accuracy; ties in the order given."""
    ranks = np.empty(len(result.arch_strs), int)
    ranks[np.argsort(-result.supernet_accuracy, kind="stable")] = np.arange(1, len(ranks) + 1)
    return ranks


def format_table(result: RankingResult) -> str:
    """The best and worst ``SHOWN`` architectures by supernet accuracy, and Kendall tau."""
    ranks = supernet_ranks(result)
    order = np.argsort(ranks)
    shown = order if len(order) <= 2 * SHOWN else np.concatenate([order[:SHOWN], order[-SHOWN:]])
    lines = [f"{'rank':>4}  {'supernet':>8}  {'benchmark':>9}  {'#conv':>5}  {'#skip':>5}  arch"]
    for position, i in enumerate(shown):
        if position == SHOWN and len(order) > 2 * SHOWN:
            lines.append(f"{'...':>4}")
        arch = result.arch_strs[i]
        lines.append(f"{ranks[i]:>4}  {result.supernet_accuracy[i]:>7.2f}%  "
                     f"{result.benchmark_accuracy[i]:>8.2f}%  {conv_count(arch):>5}  "
                     f"{nb201_skip_count(arch):>5}  {arch}")
    tau = ("undefined (one ranking is constant)" if np.isnan(result.kendall_tau)
           else f"{result.kendall_tau:.4f}")
    lines.append(f"Kendall tau (supernet on {result.split}, {result.num_examples} images, vs "
                 f"{result.benchmark_column}) over {len(ranks)} architectures: {tau}")
    return "\n".join(lines)


def _rank_labels(result: RankingResult, ranks: np.ndarray):
    """``[((x, y), [rank, ...]), ...]``: the ranks 1..LABELLED at their points, with ranks whose
    points lie within 2% of the data's extent of an earlier one joined into its label."""
    points = np.stack([result.supernet_accuracy, result.benchmark_accuracy], axis=1)
    extent = np.maximum(np.ptp(points, axis=0), 1e-9)
    labels = []
    for i in np.argsort(ranks)[:LABELLED]:
        near = [group for point, group in labels
                if np.all(np.abs(points[i] - point) / extent < 0.02)]
        if near:
            near[0].append(int(ranks[i]))
        else:
            labels.append((points[i], [int(ranks[i])]))
    return labels


def plot_ranking(result: RankingResult, path: str, title: str) -> str:
    """Scatter of benchmark accuracy against supernet accuracy, one point per architecture,
    coloured by its number of convolution edges; the supernet's best ``LABELLED`` carry their
    rank. Returns ``path``."""
    from matplotlib import colormaps

    convs = np.array([conv_count(arch) for arch in result.arch_strs])
    colors = colormaps["viridis"](np.linspace(0.0, 0.9, 7))
    tau = "undefined" if np.isnan(result.kendall_tau) else f"{result.kendall_tau:.3f}"
    with new_figure(figsize=(6.4, 5.0), layout="constrained") as fig:
        ax = fig.add_subplot()
        for k in sorted(set(convs.tolist())):
            chosen = convs == k
            ax.scatter(result.supernet_accuracy[chosen], result.benchmark_accuracy[chosen],
                       s=36, color=colors[k], edgecolor="black", linewidth=0.5, zorder=2,
                       label=str(k))
        ranks = supernet_ranks(result)
        for (x, y), group in _rank_labels(result, ranks):
            ax.annotate(", ".join(map(str, group)), (x, y), xytext=(4, 4),
                        textcoords="offset points", fontsize=8)
        ax.set_xlabel(f"supernet accuracy (%), inherited weights, {result.split} split "
                      f"({result.num_examples} images)")
        ax.set_ylabel(f"NAS-Bench-201 accuracy (%), {result.benchmark_column}")
        ax.set_title(f"{title}\nKendall τ = {tau} over {len(ranks)} architectures "
                     "(labels: supernet rank)", fontsize=11)
        ax.grid(alpha=0.3, zorder=0)
        ax.legend(title="#conv edges", fontsize=8, title_fontsize=8, loc="best")
        return save_figure(fig, path)


def rank_workdir(workdir: str, nb201_table: str, num_archs: int, seed: int = 0,
                 split: str = "val", dataset: str = "cifar10",
                 metric: str = "test") -> RankingResult:
    """Samples ``num_archs`` architectures, ranks them by the search in ``workdir`` and by the
    table, prints the ranking and writes ``ranking.json`` and ``ranking.png`` into ``workdir``."""
    table = NB201Table.load(nb201_table)
    setup, state = load_search(workdir)
    archs = sample_nb201_archs(num_archs, seed, nb201_space_of(setup).ops)
    result = rank_nb201_architectures(setup, state, archs, table, (dataset, metric), split)
    print(format_table(result))
    step = int(state.step)
    tau = None if np.isnan(result.kendall_tau) else result.kendall_tau
    write_json(os.path.join(workdir, "ranking.json"), {
        "workdir": os.path.abspath(workdir), "step": step, "seed": seed, "split": split,
        "num_examples": result.num_examples, "benchmark_column": result.benchmark_column,
        "kendall_tau": tau,
        "archs": [{"arch_str": arch, "supernet_accuracy": float(s), "benchmark_accuracy": float(b),
                   "num_conv": conv_count(arch), "num_skip": nb201_skip_count(arch)}
                  for arch, s, b in zip(result.arch_strs, result.supernet_accuracy,
                                        result.benchmark_accuracy)],
    })
    plot_ranking(result, os.path.join(workdir, "ranking.png"),
                 f"{os.path.basename(os.path.abspath(workdir))}: search on "
                 f"{setup.config.dataset}, step {step}")
    print(f"Wrote {os.path.join(workdir, 'ranking.json')} and "
          f"{os.path.join(workdir, 'ranking.png')}.")
    return result


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    logging.set_verbosity(logging.WARNING)  # hushes orbax
    rank_workdir(_WORKDIR.value, _TABLE.value, _NUM_ARCHS.value, _SEED.value, _SPLIT.value,
                 _DATASET.value, _METRIC.value)


if __name__ == "__main__":
    app.run(main)
