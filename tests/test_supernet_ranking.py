"""Ranking NAS-Bench-201 architectures by a searched supernet: the inherited-weight evaluation
against the discrete networks (mixed and single-path supernets, running and batch statistics),
compile-once, the benchmark column and Kendall tau, s-tau across runs, the sampler, the errors,
and the command line end to end (one run and two). Tiny NB201 supernet on the 8x8 digits."""

import dataclasses
import itertools
import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

from jaxnas.analysis import kendall_tau
from jaxnas.analysis import supernet_ranking
from jaxnas.analysis.supernet_ranking import (RankingResult, evaluate_nb201_architectures,
                                              one_hot_weights, rank_nb201_architectures,
                                              sample_nb201_archs, supernet_stability_tau)
from jaxnas.benchmarks import ACCURACY_COLUMNS, NB201Table, parse_arch_str, unique_str
from jaxnas.data.augment import normalize
from jaxnas.engine import build, load_search, search
from jaxnas.spaces import NB201_OPS, NB201Genotype, get_space, inherit_variables, nb201_network

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

ARCHS = (
    "|nor_conv_3x3~0|+|none~0|skip_connect~1|+|avg_pool_3x3~0|nor_conv_1x1~1|nor_conv_3x3~2|",
    "|none~0|+|nor_conv_1x1~0|none~1|+|skip_connect~0|none~1|nor_conv_3x3~2|",  # node 1 is dead
    "|avg_pool_3x3~0|+|skip_connect~0|nor_conv_3x3~1|+|none~0|nor_conv_1x1~1|none~2|",
)


def _table(archs, c10_test):
    """An NB201Table of ``archs`` whose c10_test_200 column is ``c10_test`` (others 0)."""
    accuracies = np.zeros((len(archs), len(ACCURACY_COLUMNS)), np.float32)
    accuracies[:, ACCURACY_COLUMNS.index("c10_test_200")] = c10_test
    return NB201Table(range(len(archs)), archs, [unique_str(a) for a in archs], accuracies)


def _untrained(tiny_config):
    setup = build(tiny_config())
    return setup, setup.initial_state()


def _discrete_accuracies(setup, state, archs, bn="running", batch_size=None):
    """The reference: accuracy in % of each architecture's discrete network with the supernet's
    inherited weights on the search's val half, by Flax's plain ``apply``; with ``bn="batch"`` on
    its consecutive whole batches of ``batch_size``, each normalized by its own statistics."""
    indices = setup.streams["val"].indices
    x = normalize(setup.dataset.x_train[indices], setup.problem.mean, setup.problem.std)
    y = setup.dataset.y_train[indices]
    if bn == "batch":
        starts = range(0, len(y) - batch_size + 1, batch_size)
        batches = [(x[i:i + batch_size], y[i:i + batch_size]) for i in starts]
    else:
        batches = [(x, y)]
    supernet_variables = {"params": state.params, "batch_stats": state.batch_stats}
    accuracies = []
    for arch in archs:
        net = nb201_network(NB201Genotype.from_arch_str(arch), setup.space.C, setup.space.N,
                            setup.dataset.num_classes, affine=False)
        variables = inherit_variables(supernet_variables, net, x[:1], train=False)
        correct = 0
        for xb, yb in batches:
            if bn == "batch":
                logits, _ = net.apply(variables, xb, train=True, mutable=["batch_stats"])
            else:
                logits = net.apply(variables, xb, train=False)
            correct += int(np.sum(np.argmax(logits, -1) == yb))
        accuracies.append(100.0 * correct / sum(len(yb) for _, yb in batches))
    return accuracies


def test_inherited_evaluation_equals_the_discrete_networks(tmp_path, tiny_config):
    workdir = str(tmp_path / "run")
    search(tiny_config(max_steps=10), workdir)
    setup, state = load_search(workdir)
    # 719 val images in batches of 256: the last batch is padded, and the padding must not count.
    accuracy = evaluate_nb201_architectures(setup, state, ARCHS, batch_size=256)
    direct = _discrete_accuracies(setup, state, ARCHS)
    np.testing.assert_array_equal(accuracy, direct)
    assert len(set(direct)) == 3  # three different networks


def test_single_path_search_scores_the_discrete_networks_in_both_bn_modes(tmp_path,
                                                                           tiny_config):
    workdir = str(tmp_path / "run")
    search(tiny_config(**{"max_steps": 5, "strategy.name": "randomnas",
                          "strategy.selection": "random", "strategy.num_candidates": 2}),
           workdir)
    setup, state = load_search(workdir)
    assert setup.problem.net.single_path
    table = _table(ARCHS, [3.0, 1.0, 2.0])
    running = rank_nb201_architectures(setup, state, ARCHS, table, batch_size=256)
    np.testing.assert_array_equal(running.supernet_accuracy,
                                  _discrete_accuracies(setup, state, ARCHS))
    assert running.bn == "running" and running.num_examples == 719
    # Batch statistics: the 3 whole batches of 200 of the 719 val images, 119 left out.
    batch = rank_nb201_architectures(setup, state, ARCHS, table, batch_size=200, bn="batch")
    np.testing.assert_array_equal(batch.supernet_accuracy,
                                  _discrete_accuracies(setup, state, ARCHS, "batch", 200))
    assert batch.bn == "batch" and batch.num_examples == 600
    # Three different networks, and the two statistics give different scores.
    assert len(set(running.supernet_accuracy)) == len(set(batch.supernet_accuracy)) == 3
    assert not np.array_equal(running.supernet_accuracy, batch.supernet_accuracy)


def _result(supernet, archs=None, bn="running"):
    """A RankingResult of the given supernet accuracies, of ``archs`` (by default n made-up
    names) on val; the other scores do not enter s-tau."""
    n = len(supernet)
    return RankingResult(archs or tuple(f"arch{i}" for i in range(n)),
                         np.asarray(supernet, np.float64), np.zeros(n), float("nan"), "val", 100,
                         "c10_test_200", bn)


def test_stability_tau_of_runs_by_hand():
    a, b, c = (_result(s) for s in ([1, 2, 3, 4], [2, 1, 3, 4], [4, 3, 2, 1]))
    # a vs b: of the 6 pairs only (0, 1) is discordant: tau = (5 - 1) / 6.
    assert supernet_stability_tau([a, b]) == pytest.approx(2 / 3)
    # a vs c: all 6 discordant, -1; b vs c: 1 concordant, 5 discordant, -2/3.
    assert supernet_stability_tau([a, b, c]) == pytest.approx((2 / 3 - 1 - 2 / 3) / 3)
    assert math.isnan(supernet_stability_tau([a, _result([5, 5, 5, 5])]))
    with pytest.raises(ValueError, match="N >= 2 runs, got 1"):
        supernet_stability_tau([a])
    with pytest.raises(ValueError, match="Run 1 ranks other architectures than run 0"):
        supernet_stability_tau([a, _result([1, 2, 3], archs=ARCHS)])
    with pytest.raises(ValueError, match="Run 1 is scored on val with batch batch-norm"):
        supernet_stability_tau([a, _result([1, 2, 3, 4], bn="batch")])


def test_evaluation_compiles_once_for_all_architectures(tiny_config, monkeypatch):
    setup, state = _untrained(tiny_config)
    traces = []
    monkeypatch.setattr(supernet_ranking, "normalize",
                        lambda *a: (traces.append(1), normalize(*a))[1])
    archs = sample_nb201_archs(4, seed=1)
    accuracy = evaluate_nb201_architectures(setup, state, archs, split="test", batch_size=100)
    assert len(traces) == 1
    assert accuracy.shape == (4,) and np.all((accuracy >= 0) & (accuracy <= 100))
    # Scored on the 360 test digits: every accuracy is a whole number of them.
    correct = accuracy * len(setup.dataset.y_test) / 100
    np.testing.assert_allclose(correct, np.round(correct), atol=1e-6)


def test_ranking_reports_the_benchmark_column_and_its_kendall_tau(tiny_config, nb201_table_path):
    setup, state = _untrained(tiny_config)
    table = NB201Table.load(nb201_table_path)
    archs = sample_nb201_archs(6, seed=2)
    archs[0] = NB201Genotype.from_arch_str(archs[0])  # genotypes are accepted too
    result = rank_nb201_architectures(setup, state, archs, table, metric=("cifar100", "val"),
                                      split="test")
    assert result.arch_strs == tuple(str(a) for a in archs)
    assert result.benchmark_column == "c100_val_200"
    np.testing.assert_allclose(result.benchmark_accuracy,
                               [table.query(a).c100_val_200 for a in archs])
    assert np.ptp(result.supernet_accuracy) > 0
    assert result.kendall_tau == kendall_tau(result.supernet_accuracy, result.benchmark_accuracy)
    assert result.split == "test" and result.num_examples == len(setup.dataset.y_test)


def test_kendall_tau_is_nan_when_a_ranking_is_constant(tiny_config):
    setup, state = _untrained(tiny_config)
    result = rank_nb201_architectures(setup, state, ARCHS, _table(ARCHS, 50.0), split="test")
    assert math.isnan(result.kendall_tau)
    np.testing.assert_array_equal(result.benchmark_accuracy, [50.0] * 3)


def test_sample_nb201_archs_is_deterministic_and_distinct():
    archs = sample_nb201_archs(40, seed=7)
    assert archs == sample_nb201_archs(40, seed=7)
    assert archs != sample_nb201_archs(40, seed=8)
    assert len(set(archs)) == 40
    # All 5^6 cells, each once: the sampler covers the space exactly.
    every = {NB201Genotype(ops).arch_str for ops in itertools.product(NB201_OPS, repeat=6)}
    assert set(sample_nb201_archs(5 ** 6, seed=0)) == every
    subset = ("skip_connect", "nor_conv_3x3")
    assert set(sample_nb201_archs(2 ** 6, seed=0, ops=subset)) == {
        NB201Genotype(ops).arch_str for ops in itertools.product(subset, repeat=6)}
    with pytest.raises(ValueError, match="Cannot sample 65 distinct architectures"):
        sample_nb201_archs(65, seed=0, ops=subset)
    with pytest.raises(ValueError, match="ops must be NB201 operations"):
        sample_nb201_archs(2, seed=0, ops=("sep_conv_3x3",))


def test_one_hot_weights_select_the_architecture():
    weights = one_hot_weights(ARCHS[1], NB201_OPS)["cell"]
    assert weights.shape == (6, 5) and weights.sum() == 6
    assert tuple(NB201_OPS[k] for k in weights.argmax(-1)) == parse_arch_str(ARCHS[1])
    with pytest.raises(ValueError, match=r"uses \['nor_conv_1x1', 'nor_conv_3x3'\]"):
        one_hot_weights(ARCHS[1], ("none", "skip_connect"))


def test_errors_are_clear(tiny_config):
    setup = build(tiny_config())
    table = _table(ARCHS, [1.0, 2.0, 3.0])
    darts = dataclasses.replace(setup, space=get_space("darts", C=2, layers=3))
    with pytest.raises(ValueError, match="'darts' space; .* needs a search in the nb201 space"):
        rank_nb201_architectures(darts, None, ARCHS, table)
    with pytest.raises(ValueError, match="at least 2 architectures, got 1"):
        rank_nb201_architectures(setup, None, ARCHS[:1], table)
    with pytest.raises(ValueError, match="Unknown split 'train'"):
        rank_nb201_architectures(setup, None, ARCHS, table, split="train")
    with pytest.raises(ValueError, match="Unknown bn 'eval'; use 'running' .* or 'batch'"):
        rank_nb201_architectures(setup, None, ARCHS, table, bn="eval")
    with pytest.raises(KeyError, match="not in this table"):
        rank_nb201_architectures(setup, None, sample_nb201_archs(2, seed=0), table)


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "experiments.rank_nb201", *args], cwd=REPO,
                          capture_output=True, text=True)


@pytest.mark.slow
def test_the_command_line_writes_ranking_json_and_png(tmp_path, tiny_config):
    workdir = str(tmp_path / "run")
    search(tiny_config(max_steps=10), workdir)
    archs = sample_nb201_archs(8, seed=3)
    table_path = str(tmp_path / "nb201.csv")
    _table(archs, np.arange(8) * 10.0 + 5.0).to_csv(table_path)

    done = _cli(f"--workdir={workdir}", f"--nb201_table={table_path}", "--num_archs=8",
                "--seed=3", "--split=test")
    assert done.returncode == 0, done.stderr[-3000:]
    assert ("Kendall tau (supernet on test, 360 images, running BN statistics, vs c10_test_200)"
            in done.stdout)
    ranking = json.load(open(os.path.join(workdir, "ranking.json")))
    assert ranking["step"] == 10 and ranking["split"] == "test" and ranking["bn"] == "running"
    assert ranking["num_examples"] == 360
    rows = ranking["archs"]
    assert [r["arch_str"] for r in rows] == archs
    np.testing.assert_allclose([r["benchmark_accuracy"] for r in rows], np.arange(8) * 10 + 5)
    supernet = [r["supernet_accuracy"] for r in rows]
    assert all(0 <= s <= 100 for s in supernet)
    assert ranking["kendall_tau"] == pytest.approx(
        kendall_tau(supernet, [r["benchmark_accuracy"] for r in rows]))
    assert [r["num_skip"] for r in rows] == [parse_arch_str(a).count("skip_connect")
                                             for a in archs]
    with open(os.path.join(workdir, "ranking.png"), "rb") as f:
        png = f.read()
    assert png.startswith(b"\x89PNG") and len(png) > 20_000

    refused = _cli(f"--workdir={workdir}", f"--nb201_table={table_path}", "--num_archs=1")
    assert refused.returncode != 0 and "--num_archs=1: 1 is not integer >= 2" in refused.stderr
    missing = _cli(f"--workdir={workdir}", f"--nb201_table={tmp_path / 'absent.csv'}")
    assert missing.returncode != 0 and "no NB201 table at" in missing.stderr

    # Two runs (seeds 0 and 1) score the same architectures; batch statistics on the 256 test
    # digits of the one whole batch.
    second = str(tmp_path / "run2")
    search(tiny_config(max_steps=10, seed=1), second)
    out = str(tmp_path / "both")
    done = _cli(f"--workdir={workdir},{second}", f"--nb201_table={table_path}", "--num_archs=8",
                "--seed=3", "--split=test", "--bn=batch", f"--out={out}")
    assert done.returncode == 0, done.stderr[-3000:]
    ranking = json.load(open(os.path.join(out, "ranking.json")))
    assert ranking["bn"] == "batch" and [r["arch_str"] for r in ranking["archs"]] == archs
    assert [(r["workdir"], r["step"], r["num_examples"]) for r in ranking["runs"]] == [
        (workdir, 10, 256), (second, 10, 256)]
    scores = np.array([r["supernet_accuracy"] for r in ranking["archs"]]).T  # [runs, archs]
    benchmark = np.arange(8) * 10.0 + 5.0
    taus = [kendall_tau(run, benchmark) for run in scores]
    np.testing.assert_allclose([r["kendall_tau"] for r in ranking["runs"]], taus)
    assert ranking["kendall_tau_mean"] == pytest.approx((taus[0] + taus[1]) / 2)
    assert ranking["kendall_tau_std"] == pytest.approx(abs(taus[0] - taus[1]) / 2)
    # s-tau of two runs: the Kendall tau between their supernet rankings, the one pair.
    assert ranking["stability_tau"] == pytest.approx(kendall_tau(*scores))
    assert "s-tau (mean Kendall tau between the supernet rankings of the 2 runs): " in done.stdout
    assert os.path.getsize(os.path.join(out, "ranking.png")) > 20_000
    without_out = _cli(f"--workdir={workdir},{second}", f"--nb201_table={table_path}")
    assert (without_out.returncode != 0
            and "error: --out is required with 2 workdirs" in without_out.stderr)
