"""Oracle searches from a config (``experiments/configs/oracle_nb201.py``,
``jaxnas.engine.oracle_loop``): what they write, reruns, and the errors they give."""

import json
import os
import pathlib

import numpy as np
import pytest

from experiments.configs import oracle_nb201
from jaxnas.benchmarks import NB201Table
from jaxnas.benchmarks.oracle import NB201Oracle
from jaxnas.blackbox import SEARCHES
from jaxnas.engine.oracle_loop import ALGOS, oracle_search

REPO = pathlib.Path(__file__).resolve().parents[1]
QUERIES = 30
DATASET = "cifar100"


@pytest.fixture(scope="module")
def table(nb201_table_path):
    return NB201Table.load(nb201_table_path)


@pytest.fixture(scope="module")
def oracle(table):
    return NB201Oracle.from_table(table, DATASET, "val")


@pytest.fixture
def make_config(nb201_table_path):
    """``make(algo, **dotted overrides)``: the config of ``algo`` on the shared table, CIFAR-100,
    ``QUERIES`` queries."""

    def make(algo="rs", **overrides):
        config = oracle_nb201.get_config(algo)
        config.nb201_table = nb201_table_path
        config.oracle.dataset = DATASET
        config.oracle.queries = QUERIES
        config.update_from_flattened_dict(overrides)
        return config

    return make


def read_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def read_metrics(folder):
    with open(os.path.join(folder, "metrics.jsonl"), encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def file_times(folder):
    return {p: p.stat().st_mtime_ns for p in pathlib.Path(folder).rglob("*") if p.is_file()}


@pytest.mark.parametrize("algo", ALGOS)
def test_a_search_writes_what_the_table_says(algo, make_config, table, oracle, tmp_path):
    result = oracle_search(make_config(algo), str(tmp_path))
    expected = SEARCHES[algo](oracle, 1, QUERIES).final
    records = read_metrics(tmp_path)
    assert [r["step"] for r in records] == list(range(1, QUERIES + 1))
    accuracy = np.array([r["accuracy"] for r in records])
    np.testing.assert_allclose(accuracy, [table.query(r["arch_str"]).c100_val_200
                                          for r in records], atol=1e-4)
    np.testing.assert_array_equal([r["best_accuracy"] for r in records],
                                  np.maximum.accumulate(accuracy))
    genotype = read_json(tmp_path / "genotype.json")
    row = table.query(genotype["arch_str"])
    assert genotype["nb201"]["index"] == row.index
    assert genotype["val"] == pytest.approx(row.c100_val_200, abs=1e-4)
    assert genotype["test"] == pytest.approx(row.c100_test_200, abs=1e-4)
    assert (genotype["val"], genotype["test"]) == (records[-1]["best_val"],
                                                   records[-1]["best_test"])
    assert genotype["cell"] == expected["cell"]
    assert genotype["val"] == pytest.approx(expected["val"], abs=1e-4)
    assert genotype["test"] == pytest.approx(expected["test"], abs=1e-4)
    assert genotype["distinct_cells"] == len({r["arch_str"] for r in records})
    assert {k: genotype[k] for k in ("queries", "seed", "algo", "dataset", "metric")} == {
        "queries": QUERIES, "seed": 1, "algo": algo, "dataset": DATASET, "metric": "val"}
    assert genotype["wall_s"] > 0
    assert result.histories[0].final == expected
    assert (tmp_path / "best_vs_queries.png").stat().st_size > 0
    assert read_json(tmp_path / "config.json")["oracle"]["algo"] == algo
    assert not (tmp_path / "summary.json").exists()


def test_several_seeds_write_a_summary(make_config, oracle, tmp_path, capsys):
    result = oracle_search(make_config("rs", seeds=3, seed=4), str(tmp_path))
    summary = read_json(tmp_path / "summary.json")
    assert summary == result.summary and summary["seeds"] == [4, 5, 6]
    for run in summary["runs"]:
        folder = tmp_path / f"seed{run['seed']}"
        genotype = read_json(folder / "genotype.json")
        assert run == {k: genotype[k] for k in run}
        assert len(read_metrics(folder)) == QUERIES
        assert run["val"] == pytest.approx(SEARCHES["rs"](oracle, run["seed"], QUERIES)
                                           .final["val"], abs=1e-4)
    for key in ("val", "test"):
        values = [run[key] for run in summary["runs"]]
        assert summary[key] == {"mean": pytest.approx(np.mean(values)),
                                "std": pytest.approx(np.std(values))}
    assert not (tmp_path / "genotype.json").exists()
    assert (f"seeds 4..6: final val {summary['val']['mean']:.2f} ± "
            f"{summary['val']['std']:.2f}") in capsys.readouterr().out


def test_a_rerun_of_a_finished_run_writes_nothing(make_config, tmp_path, capsys):
    first = oracle_search(make_config("rea", seeds=2), str(tmp_path))
    before = file_times(tmp_path)
    capsys.readouterr()
    again = oracle_search(make_config("rea", seeds=2), str(tmp_path))
    assert "finished; nothing to do" in capsys.readouterr().out
    assert again.histories is None and again.summary == first.summary
    assert file_times(tmp_path) == before
    # A run killed before its last file simply runs again, to the same results.
    (tmp_path / "summary.json").unlink()
    again = oracle_search(make_config("rea", seeds=2), str(tmp_path))
    assert again.histories is not None and again.summary["runs"] == [
        {**run, "wall_s": r["wall_s"]} for run, r in zip(first.summary["runs"],
                                                         again.summary["runs"])]
    assert (tmp_path / "summary.json").exists()


def test_a_changed_config_is_refused_unless_allowed(make_config, tmp_path):
    oracle_search(make_config("reinforce"), str(tmp_path))
    before = file_times(tmp_path)
    with pytest.raises(ValueError, match=r"different config \(oracle.queries: 30 -> 31\)"):
        oracle_search(make_config("reinforce", **{"oracle.queries": 31}), str(tmp_path))
    assert file_times(tmp_path) == before
    result = oracle_search(make_config("reinforce", **{"oracle.queries": 31}), str(tmp_path),
                           allow_changes=["oracle.queries"])
    assert result.histories is not None and len(read_metrics(tmp_path)) == 31
    assert read_json(tmp_path / "config.json")["history"][0]["changed"] == {
        "oracle.queries": [30, 31]}


@pytest.mark.parametrize("overrides,error,message", [
    ({"oracle.dataset": "cifar11"}, ValueError, r"config.oracle.dataset: .*'cifar11'"),
    ({"oracle.metric": "train"}, ValueError, r"config.oracle.metric: .*'train'"),
    ({"oracle.queries": 0}, ValueError, r"config.oracle.queries must be a positive .* 0"),
    ({"seeds": 0}, ValueError, r"config.seeds must be a positive .* 0"),
    ({"oracle.algo": "ga"}, ValueError, r"config.oracle.algo: .*'ga'"),
    ({"nb201_table": "/nowhere/nb201.csv"}, FileNotFoundError,
     r"config.nb201_table: no NB201 table at '/nowhere/nb201.csv'"),
    ({"nb201_table": ""}, ValueError, r"config.nb201_table is empty"),
    ({"oracle.settings.population": 40}, ValueError,
     r"config.oracle \(rea\): queries=30 must be >= population=40"),
])
def test_bad_values_are_refused_before_anything_is_written(make_config, tmp_path, overrides,
                                                          error, message):
    with pytest.raises(error, match=message):
        oracle_search(make_config("rea", **overrides), str(tmp_path / "run"))
    assert not (tmp_path / "run").exists()


def test_unknown_settings_and_algorithms_are_named(make_config, tmp_path):
    config = make_config("cadam")
    config.oracle.settings.actor_lr = 1e-4  # a CADAM setting
    config.oracle.settings.actor_lrr = 1e-4
    with pytest.raises(ValueError, match=r"config.oracle.settings.actor_lrr is not a setting "
                                         r"of 'cadam'; its settings are \[.*'actor_lr'"):
        oracle_search(config, str(tmp_path / "run"))
    with pytest.raises(ValueError, match=r"config.oracle.settings.actor_lr is not a setting of "
                                         r"'rs'; its settings are \['distinct'\]"):
        oracle_search(make_config("cadam", **{"oracle.algo": "rs"}), str(tmp_path / "run"))
    with pytest.raises(ValueError, match=r"one of cadam, rs, rea, reinforce .* got 'ga'"):
        oracle_nb201.get_config("ga")
    assert not (tmp_path / "run").exists()


@pytest.fixture
def command_line(run_script):
    """``run(*args) -> (exit status, stdout, stderr)``: ``python -m experiments.search ARGS``."""
    return lambda *args: run_script("search", *args)


def test_the_command_line(command_line, nb201_table_path, table, tmp_path):
    base = [f"--config={REPO / 'experiments/configs/oracle_nb201.py'}:cadam",
            f"--workdir={tmp_path}", f"--config.nb201_table={nb201_table_path}",
            "--config.oracle.queries=20"]
    status, out, err = command_line(*base, "--config.oracle.settings.actor_lr=1e-4")
    assert status == 0, err
    genotype = read_json(tmp_path / "genotype.json")
    expected = SEARCHES["cadam"](NB201Oracle.from_table(table, "cifar10", "val"), 1, 20,
                                 actor_lr=1e-4).final
    assert genotype["cell"] == expected["cell"] and genotype["arch_str"] in out
    assert read_json(tmp_path / "config.json")["oracle"]["settings"]["actor_lr"] == 1e-4
    status, _, err = command_line(*base, "--config.oracle.settings.actor_lr=1e-3")
    assert status == 1 and "oracle.settings.actor_lr: 0.0001 -> 0.001" in err, err
    status, _, err = command_line(*base, "--config.oracle.settings.actor_lrr=1e-4")
    assert status == 2 and "has no config field 'oracle.settings.actor_lrr'" in err
    status, _, err = command_line(*base, "--config.oracle.dataset=cifar11")
    assert status == 1 and err.strip() == (
        "error: config.oracle.dataset: unknown NB201 dataset 'cifar11'; use one of "
        "('cifar10', 'cifar100', 'imagenet16-120').")


def test_the_best_vs_queries_plot(tmp_path):
    import matplotlib.image

    from jaxnas.viz import plot_best_vs_queries

    best = np.maximum.accumulate(np.random.default_rng(0).uniform(80, 91, (3, 50)), axis=1)
    path = plot_best_vs_queries(best, tmp_path / "best.png", optimum=91.61)
    assert matplotlib.image.imread(path).shape[2] in (3, 4)
    plot_best_vs_queries(best[:1], tmp_path / "one.png", labels=["seed 1"])
    with pytest.raises(ValueError, match=r"float\[S, T\].* got shape \[50\]"):
        plot_best_vs_queries(best[0], tmp_path / "bad.png")
    with pytest.raises(ValueError, match="2 labels for 3 searches"):
        plot_best_vs_queries(best, tmp_path / "bad.png", labels=["a", "b"])
