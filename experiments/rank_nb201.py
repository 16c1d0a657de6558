"""Ranks random NAS-Bench-201 architectures by the supernets of NB201 searches (any strategy,
mixed or single-path) and by the benchmark.

    python -m experiments.rank_nb201 --workdir=runs/a1[,runs/a2,...] --nb201_table=PATH \
        [--num_archs=50 --seed=0 --split=val --bn=running --dataset=cifar10 --metric=test \
         --out=DIR]

One workdir: prints the best and worst architectures by supernet accuracy next to their
benchmark accuracy, and the Kendall tau between the two rankings; writes ``ranking.json`` and
``ranking.png`` (benchmark accuracy against supernet accuracy) into ``--out``, by default the
workdir.

Several workdirs (runs of one search with different seeds): every run scores the same sampled
architectures; prints each run's Kendall tau, their mean and standard deviation (over runs,
ddof=0), and s-tau, the mean Kendall tau between the runs' supernet rankings (Zhang thesis Sec
2.4.4); writes ``ranking.json`` (the runs, the summary, and each architecture's supernet
accuracy in every run) and ``ranking.png`` (one panel per run) into ``--out``, which is then
required. With ``--split=val`` each run is scored on its own val half (the search split depends
on the run's seed); ``--split=test`` scores every run on the same images.

``--bn=batch`` scores with each batch's own batch-norm statistics instead of the supernet's
running statistics, which in a single-path supernet mix the activations of many paths.
"""

import os

import numpy as np
from absl import app, flags

from experiments import cli
from jaxnas.analysis import nb201_skip_count
from jaxnas.analysis.supernet_ranking import (BN_MODES, SPLITS, RankingResult, nb201_space_of,
                                              rank_nb201_architectures, sample_nb201_archs,
                                              supernet_stability_tau)
from jaxnas.benchmarks import NB201Table, parse_arch_str
from jaxnas.benchmarks.nb201 import DATASETS, METRICS
from jaxnas.engine import load_search
from jaxnas.files import write_json
from jaxnas.viz.cells import new_figure, save_figure

_WORKDIRS = flags.DEFINE_list("workdir", None, "Workdir of a finished (or running) NB201 "
                              "search, or a comma-separated list of runs of one search.")
_TABLE = flags.DEFINE_string("nb201_table", None, "Path of the NAS-Bench-201 CSV table.")
_NUM_ARCHS = flags.DEFINE_integer("num_archs", 50, "Number of random architectures to rank.",
                                  lower_bound=2)
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the architecture sample.")
_SPLIT = flags.DEFINE_enum("split", "val", SPLITS, "Images the supernet is scored on: the "
                           "search's val half of the training set, or the test split.")
_DATASET = flags.DEFINE_enum("dataset", "cifar10", list(DATASETS), "Benchmark dataset.")
_METRIC = flags.DEFINE_enum("metric", "test", METRICS, "Benchmark metric (see "
                            "jaxnas.benchmarks.column_name).")
_BN = flags.DEFINE_enum("bn", "running", BN_MODES, "Batch-norm statistics of the supernet "
                        "scores: the supernet's running statistics, or each batch's own.")
_OUT = flags.DEFINE_string("out", None, "Directory for ranking.json and ranking.png; by default "
                           "the workdir of a single run (required with several).")
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


def _tau_text(tau: float, digits: int = 4) -> str:
    return "undefined (a ranking is constant)" if np.isnan(tau) else f"{tau:.{digits}f}"


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
    lines.append(f"Kendall tau (supernet on {result.split}, {result.num_examples} images, "
                 f"{result.bn} BN statistics, vs {result.benchmark_column}) over {len(ranks)} "
                 f"architectures: {_tau_text(result.kendall_tau)}")
    return "\n".join(lines)


def summarize_runs(results: list[RankingResult]) -> dict[str, float]:
    """Over N >= 2 runs: the mean and standard deviation (ddof=0) of their Kendall taus, and
    s-tau (``supernet_stability_tau``); NaN where a ranking is constant."""
    taus = np.array([result.kendall_tau for result in results])
    return {"kendall_tau_mean": float(np.mean(taus)), "kendall_tau_std": float(np.std(taus)),
            "stability_tau": supernet_stability_tau(results)}


def format_runs(workdirs: list[str], steps: list[int], results: list[RankingResult],
                summary: dict[str, float]) -> str:
    """Each run's Kendall tau, their mean and standard deviation, and s-tau."""
    lines = [f"{'run':>3}  {'step':>6}  {'images':>6}  {'tau':>7}  workdir"]
    for k, (workdir, step, result) in enumerate(zip(workdirs, steps, results)):
        lines.append(f"{k:>3}  {step:>6}  {result.num_examples:>6}  "
                     f"{_tau_text(result.kendall_tau):>7}  {workdir}")
    first, n = results[0], len(results)
    lines.append(f"Kendall tau (supernet on {first.split}, {first.bn} BN statistics, vs "
                 f"{first.benchmark_column}) over {len(first.arch_strs)} architectures and {n} "
                 f"runs: mean {_tau_text(summary['kendall_tau_mean'])}, std "
                 f"{_tau_text(summary['kendall_tau_std'])}")
    lines.append(f"s-tau (mean Kendall tau between the supernet rankings of the {n} runs): "
                 f"{_tau_text(summary['stability_tau'])}")
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


def _draw_ranking(ax, result: RankingResult, title: str):
    """Scatter of benchmark accuracy against supernet accuracy, one point per architecture,
    coloured by its number of convolution edges; the supernet's best ``LABELLED`` carry their
    rank."""
    from matplotlib import colormaps

    convs = np.array([conv_count(arch) for arch in result.arch_strs])
    colors = colormaps["viridis"](np.linspace(0.0, 0.9, 7))
    for k in sorted(set(convs.tolist())):
        chosen = convs == k
        ax.scatter(result.supernet_accuracy[chosen], result.benchmark_accuracy[chosen],
                   s=36, color=colors[k], edgecolor="black", linewidth=0.5, zorder=2,
                   label=str(k))
    ranks = supernet_ranks(result)
    for (x, y), group in _rank_labels(result, ranks):
        ax.annotate(", ".join(map(str, group)), (x, y), xytext=(4, 4),
                    textcoords="offset points", fontsize=8)
    ax.set_xlabel(f"supernet accuracy (%), inherited weights, {result.split} split\n"
                  f"({result.num_examples} images), {result.bn} BN statistics")
    ax.set_ylabel(f"NAS-Bench-201 accuracy (%), {result.benchmark_column}")
    ax.set_title(f"{title}\nKendall τ = {_tau_text(result.kendall_tau, 3)} over {len(ranks)} "
                 "architectures (labels: supernet rank)", fontsize=11)
    ax.grid(alpha=0.3, zorder=0)
    ax.legend(title="#conv edges", fontsize=8, title_fontsize=8, loc="best")


def plot_rankings(results: list[RankingResult], titles: list[str], path: str,
                  suptitle: str | None = None) -> str:
    """One panel per run (``_draw_ranking``), side by side. Returns ``path``."""
    with new_figure(figsize=(6.4 * len(results), 5.2), layout="constrained") as fig:
        for ax, result, title in zip(fig.subplots(1, len(results), squeeze=False)[0], results,
                                     titles):
            _draw_ranking(ax, result, title)
        if suptitle:
            fig.suptitle(suptitle)
        return save_figure(fig, path)


def _json_float(value: float) -> float | None:
    return None if np.isnan(value) else float(value)


def ranking_record(workdirs: list[str], steps: list[int], results: list[RankingResult],
                   seed: int, summary: dict[str, float] | None = None) -> dict:
    """The contents of ranking.json. One run: its workdir, step, num_examples and kendall_tau at
    the top level, and each architecture's supernet_accuracy a number. Several runs: those in
    ``runs``, ``summary`` at the top level, and each architecture's supernet_accuracy a list
    with one entry per run."""
    first = results[0]
    runs = [{"workdir": os.path.abspath(workdir), "step": step,
             "num_examples": result.num_examples, "kendall_tau": _json_float(result.kendall_tau)}
            for workdir, step, result in zip(workdirs, steps, results)]
    record = {"seed": seed, "split": first.split, "bn": first.bn,
              "benchmark_column": first.benchmark_column}
    supernet = np.stack([result.supernet_accuracy for result in results], axis=1)  # [n, N]
    if len(results) == 1:
        record.update(runs[0])
        supernet = supernet[:, 0]
    else:
        record.update(runs=runs, **{k: _json_float(v) for k, v in summary.items()})
    record["archs"] = [{"arch_str": arch, "supernet_accuracy": s.tolist(),
                        "benchmark_accuracy": float(b), "num_conv": conv_count(arch),
                        "num_skip": nb201_skip_count(arch)}
                       for arch, s, b in zip(first.arch_strs, supernet, first.benchmark_accuracy)]
    return record


def load_runs(workdirs: list[str]) -> list:
    """``(setup, state)`` of the search in each workdir, all checked (NB201 searches over the
    same operations) before anything is scored."""
    runs = []
    for workdir in workdirs:
        setup, state = load_search(workdir)
        try:
            ops = nb201_space_of(setup).ops
        except ValueError as e:
            raise ValueError(f"{workdir}: {e}") from None
        if runs and ops != runs[0][0].space.ops:
            raise ValueError(f"{workdir} searches the operations {ops}, {workdirs[0]} "
                             f"{runs[0][0].space.ops}; runs ranked together must search the "
                             "same operations.")
        runs.append((setup, state))
    return runs


def rank_workdirs(workdirs: list[str], nb201_table: str, num_archs: int, seed: int = 0,
                  split: str = "val", dataset: str = "cifar10", metric: str = "test",
                  bn: str = "running", out: str | None = None) -> list[RankingResult]:
    """Samples ``num_archs`` architectures, ranks them by the search in each of ``workdirs`` and
    by the table, prints the ranking (and, for several runs, the mean and std of tau and s-tau)
    and writes ``ranking.json`` and ``ranking.png`` into ``out`` (by default the workdir of a
    single run). Returns each run's ``RankingResult``."""
    if not workdirs or not all(workdirs):
        raise ValueError(f"--workdir={','.join(workdirs)}: an empty workdir in the list; "
                         "separate workdirs by single commas.")
    real = [os.path.realpath(w) for w in workdirs]
    repeated = sorted({w for w, r in zip(workdirs, real) if real.count(r) > 1})
    if repeated:
        raise ValueError(f"--workdir lists the same run more than once ({', '.join(repeated)}); "
                         "s-tau compares different runs.")
    if out is None and len(workdirs) > 1:
        raise ValueError(f"--out is required with {len(workdirs)} workdirs: name the directory "
                         "for ranking.json and ranking.png.")
    table = NB201Table.load(nb201_table)
    runs = load_runs(workdirs)
    archs = sample_nb201_archs(num_archs, seed, runs[0][0].space.ops)
    results = [rank_nb201_architectures(setup, state, archs, table, (dataset, metric), split,
                                        bn=bn) for setup, state in runs]
    steps = [int(state.step) for _, state in runs]
    names = [os.path.basename(os.path.abspath(w)) for w in workdirs]
    searched = runs[0][0].config.dataset
    if len(results) == 1:
        summary, suptitle = None, None
        titles = [f"{names[0]}: search on {searched}, step {steps[0]}"]
        print(format_table(results[0]))
    else:
        summary = summarize_runs(results)
        titles = [f"{name}, step {step}" for name, step in zip(names, steps)]
        suptitle = (f"Search on {searched}, {len(results)} runs: Kendall τ mean "
                    f"{_tau_text(summary['kendall_tau_mean'], 3)}, std "
                    f"{_tau_text(summary['kendall_tau_std'], 3)}; s-τ "
                    f"{_tau_text(summary['stability_tau'], 3)}")
        print(format_runs(workdirs, steps, results, summary))
    out = workdirs[0] if out is None else out
    os.makedirs(out, exist_ok=True)
    json_path, png_path = os.path.join(out, "ranking.json"), os.path.join(out, "ranking.png")
    write_json(json_path, ranking_record(workdirs, steps, results, seed, summary))
    plot_rankings(results, titles, png_path, suptitle)
    print(f"Wrote {json_path} and {png_path}.")
    return results


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    rank_workdirs(_WORKDIRS.value, _TABLE.value, _NUM_ARCHS.value, _SEED.value, _SPLIT.value,
                  _DATASET.value, _METRIC.value, _BN.value, _OUT.value)


if __name__ == "__main__":
    cli.run(main)
