"""Black-box searches on the NAS-Bench-201 table from a config: CADAM, random search (RS),
regularized evolution (REA) or REINFORCE (``jaxnas.blackbox``) querying the accuracy oracle
(``jaxnas.benchmarks.oracle``), for one seed or several.

``oracle_search(config, workdir)`` runs a config of ``experiments/configs/oracle_nb201.py``
(``seed``, ``seeds``, ``nb201_table``, ``oracle.{algo, dataset, metric, queries, settings}``)
and writes, per seed (in ``workdir`` with one seed, in ``workdir/seed{S}/`` with several):

- ``metrics.jsonl``: one JSON object per query t = 1..T: ``step`` (t), ``accuracy`` (the search
  metric of the queried cell) and ``arch_str`` (that cell), ``best_accuracy``, ``best_val`` and
  ``best_test`` (the best cell of queries 1..t by the search metric: its search-metric, 200-epoch
  val and test accuracy);
- ``genotype.json``: the final best cell (``save_genotype``, with ``arch_str``), its row of the
  table (``nb201``, as an NB201 supernet search records its genotype), ``cell`` (op indices),
  ``search``, ``val``, ``test``, ``queries``, ``distinct_cells``, ``seed``, ``algo``,
  ``dataset``, ``metric`` and ``wall_s`` (the search's seconds, compilation included);

and in ``workdir``: ``config.json`` (``jaxnas.engine.workdir``: a different config on a rerun is
refused), ``best_vs_queries.png`` and, with several seeds, ``summary.json`` (every seed's final
cell and the mean and std, ddof 0, of the final val and test accuracy). Accuracies are in %,
each the shortest decimal that reads back as the oracle's float32 value (90.924, not
90.92400360107422).

There are no checkpoints: a search is a deterministic function of its seed and takes seconds,
so a run killed midway simply runs again from the start when rerun, and a rerun of a finished
run (every output there, the same config) says that it is done and writes nothing. The searches
run before anything is written, so a setting a search refuses leaves no trace.
"""

import dataclasses
import inspect
import json
import os
import time

import jax
import numpy as np

from jaxnas import viz
from jaxnas.benchmarks import NB201Lookup, NB201Table
from jaxnas.benchmarks.nb201 import DATASETS
from jaxnas.benchmarks.oracle import SEARCH_METRICS, NB201Oracle, cell_arch_str
from jaxnas.blackbox import SEARCHES, CadamConfig
from jaxnas.engine import config as config_lib
from jaxnas.engine.workdir import check_workdir, claim_workdir, locked, read_config
from jaxnas.files import write_json, write_jsonl
from jaxnas.log import logger
from jaxnas.spaces.genotypes import NB201Genotype, save_genotype

ALGOS = tuple(SEARCHES)
RUN_FIELDS = ("seed", "arch_str", "search", "val", "test", "distinct_cells", "wall_s")
"""The fields of ``genotype.json`` that ``summary.json`` lists for each seed."""
_SEARCH_ARGS = ("oracle", "key_or_seed", "queries")


@dataclasses.dataclass
class OracleSearchResult:
    """``summary``: what ``summary.json`` holds (it is written only with several seeds): the
    config's algo, dataset, metric, queries and seeds, ``runs`` (per seed, ``RUN_FIELDS``) and
    ``val`` / ``test`` ``{"mean", "std"}`` over the seeds. ``histories``: each seed's
    ``jaxnas.blackbox.History``, in seed order; None when the run had finished before."""

    summary: dict
    histories: list | None


def default_settings(algo: str) -> dict:
    """The settings of search ``algo`` with their defaults: ``CadamConfig``'s fields for CADAM,
    the keyword arguments of ``run_X`` after ``queries`` for the others."""
    if algo not in ALGOS:
        raise ValueError(f"unknown oracle search {algo!r}; use one of {ALGOS}.")
    if algo == "cadam":
        return {f.name: f.default for f in dataclasses.fields(CadamConfig)}
    return {name: p.default for name, p in inspect.signature(SEARCHES[algo]).parameters.items()
            if name not in _SEARCH_ARGS}


def validate(config) -> None:
    """Clear errors, naming the field, for config values an oracle search cannot run with (the
    settings' values are the search's to check: ``oracle_search`` runs it before writing)."""
    oracle = config.oracle
    if oracle.algo not in ALGOS:
        raise ValueError(f"config.oracle.algo: unknown oracle search {oracle.algo!r}; use one "
                         f"of {ALGOS}.")
    if not isinstance(oracle.dataset, str) or oracle.dataset.lower() not in DATASETS:
        raise ValueError(f"config.oracle.dataset: unknown NB201 dataset {oracle.dataset!r}; "
                         f"use one of {tuple(DATASETS)}.")
    if oracle.metric not in SEARCH_METRICS:
        raise ValueError(f"config.oracle.metric: unknown search metric {oracle.metric!r}; use "
                         f"one of {SEARCH_METRICS} ('val' or 'test': the 200-epoch accuracy; "
                         "'_12': 12 epochs).")
    config_lib.require_positive(config, "seeds", "oracle.queries")
    config_lib.require_nonnegative(config, "seed")
    known = default_settings(oracle.algo)
    unknown = sorted(set(oracle.settings.keys()) - set(known))
    if unknown:
        raise ValueError(f"config.oracle.settings.{unknown[0]} is not a setting of "
                         f"{oracle.algo!r}; its settings are {sorted(known)} (the config "
                         f"oracle_nb201.py:{oracle.algo} has them all).")
    if not config.nb201_table:
        raise ValueError("config.nb201_table is empty; give the path of the NAS-Bench-201 CSV "
                         "table: --config.nb201_table=PATH.")


def seed_dirs(workdir: str, first: int, count: int) -> dict[int, str]:
    """``{seed: its folder}``: ``workdir`` itself for one seed, ``workdir/seed{S}`` for several."""
    if count == 1:
        return {first: workdir}
    return {s: os.path.join(workdir, f"seed{s}") for s in range(first, first + count)}


def oracle_search(config, workdir: str, allow_changes=()) -> OracleSearchResult:
    """Runs the searches of ``config`` (module docstring) and writes them to ``workdir``.
    ``allow_changes``: config fields that may differ from the workdir's saved config (see
    ``jaxnas.engine.workdir``); a run whose config changed runs again."""
    validate(config)
    if jax.process_count() > 1:
        raise ValueError("A black-box search on the NB201 table runs on one process (it takes "
                         "seconds); start it without --coordinator_address, --num_processes "
                         "and --process_id, or with --distributed=off in a cluster job.")
    try:
        table = NB201Table.load(config.nb201_table)
    except FileNotFoundError as e:
        raise FileNotFoundError(f"config.nb201_table: {e} Pass the table's path with "
                                "--config.nb201_table=PATH.") from None
    oracle = NB201Oracle.from_table(table, config.oracle.dataset, config.oracle.metric)
    dirs = seed_dirs(workdir, config.seed, config.seeds)
    check_workdir(workdir)
    if read_config(workdir) is not None:  # a different config is refused before anything runs
        with locked(workdir):
            saved = read_config(workdir)
            claim_workdir(workdir, config, allow_changes)
            if read_config(workdir) == saved and _finished(workdir, dirs):
                summary = summarize(config, [_run_record(_read_json(os.path.join(
                    d, "genotype.json"))) for d in dirs.values()])
                print(f"{workdir} holds this search, finished; nothing to do.")
                print(summary_line(summary))
                return OracleSearchResult(summary, None)
    logger.info("%s on %s: %d queries each, seed%s %s; writing to %s.", config.oracle.algo,
                oracle.name, config.oracle.queries, "s" if len(dirs) > 1 else "",
                _span(list(dirs)), workdir)
    runs = {seed: _search(oracle, config, seed) for seed in dirs}
    lookup = NB201Lookup(table)
    with locked(workdir):
        claim_workdir(workdir, config, allow_changes)
        records = [_write_seed(dirs[seed], oracle, config, seed, history, wall_s, lookup)
                   for seed, (history, wall_s) in runs.items()]
        summary = summarize(config, [_run_record(r) for r in records])
        histories = [history for history, _ in runs.values()]
        viz.plot_best_vs_queries(
            np.stack([h.best_accuracy for h in histories]),
            os.path.join(workdir, "best_vs_queries.png"),
            optimum=oracle.best("search")[1].search, labels=[f"seed {s}" for s in dirs],
            title=f"{config.oracle.algo} on NB201 {oracle.dataset}",
            ylabel=f"best {oracle.metric} accuracy found (%)")
        if len(dirs) > 1:
            write_json(os.path.join(workdir, "summary.json"), summary)
    print(summary_line(summary))
    return OracleSearchResult(summary, histories)


def summarize(config, runs: list[dict]) -> dict:
    """``summary.json``: the search's config and seeds, ``runs`` (``RUN_FIELDS`` per seed) and
    the mean and std (ddof 0) over the seeds of the final val and test accuracy."""
    out = {"algo": config.oracle.algo, "dataset": config.oracle.dataset.lower(),
           "metric": config.oracle.metric, "queries": config.oracle.queries,
           "seeds": [run["seed"] for run in runs], "runs": runs}
    for key in ("val", "test"):
        values = np.array([run[key] for run in runs], np.float64)
        out[key] = {"mean": float(values.mean()), "std": float(values.std())}
    return out


def summary_line(summary: dict) -> str:
    """One line: the final val and test accuracy (mean ± std over several seeds)."""
    seeds = summary["seeds"]
    head = (f"{summary['algo']} on NB201 {summary['dataset']} (search metric "
            f"{summary['metric']}), {summary['queries']} queries")
    if len(seeds) == 1:
        run = summary["runs"][0]
        return (f"{head}, seed {seeds[0]}: final val {run['val']:.2f}, test {run['test']:.2f}, "
                f"genotype {run['arch_str']}")
    val, test = summary["val"], summary["test"]
    return (f"{head}, seeds {_span(seeds)}: final val {val['mean']:.2f} ± {val['std']:.2f}, "
            f"test {test['mean']:.2f} ± {test['std']:.2f} (mean ± std over seeds)")


def _search(oracle, config, seed):
    """``(History, seconds)`` of one seed's search."""
    algo, settings = config.oracle.algo, config.oracle.settings.to_dict()
    start = time.perf_counter()
    try:
        history = SEARCHES[algo](oracle, seed, config.oracle.queries, **settings)
    except ValueError as e:
        raise ValueError(f"config.oracle ({algo}): {e}") from None
    wall_s = time.perf_counter() - start
    final = history.final
    logger.info("seed %d: final val %.2f, test %.2f (%d distinct cells of %d queries, %.1f s).",
                seed, final["val"], final["test"], history.num_distinct(), history.queries,
                wall_s)
    return history, wall_s


def _write_seed(folder, oracle, config, seed, history, wall_s, lookup) -> dict:
    """Writes ``metrics.jsonl`` and ``genotype.json`` of one seed to ``folder``; returns what
    ``genotype.json`` holds."""
    os.makedirs(folder, exist_ok=True)
    columns = {key: _decimals(getattr(history, key))
               for key in ("accuracy", "best_accuracy", "best_val", "best_test")}
    arch_strs = [cell_arch_str(cell) for cell in history.cells]
    write_jsonl(os.path.join(folder, "metrics.jsonl"), (
        {"step": t + 1, "accuracy": columns["accuracy"][t], "arch_str": arch_strs[t],
         **{key: columns[key][t] for key in ("best_accuracy", "best_val", "best_test")}}
        for t in range(history.queries)))
    final = history.final
    genotype = NB201Genotype.from_arch_str(cell_arch_str(final["cell"]))
    record = {"cell": final["cell"],
              **{key: _decimals([final[key]])[0] for key in ("search", "val", "test")},
              "queries": history.queries, "distinct_cells": history.num_distinct(),
              "seed": seed, "algo": config.oracle.algo, "dataset": oracle.dataset,
              "metric": oracle.metric, "wall_s": round(wall_s, 3), **lookup.record(genotype)}
    save_genotype(genotype, os.path.join(folder, "genotype.json"), **record)
    return {**genotype.to_dict(), **record}


def _run_record(genotype_json: dict) -> dict:
    return {key: genotype_json[key] for key in RUN_FIELDS}


def _finished(workdir: str, dirs: dict) -> bool:
    paths = [os.path.join(d, name) for d in dirs.values()
             for name in ("metrics.jsonl", "genotype.json")]
    paths.append(os.path.join(workdir, "best_vs_queries.png"))
    if len(dirs) > 1:
        paths.append(os.path.join(workdir, "summary.json"))
    return all(os.path.isfile(p) for p in paths)


def _read_json(path: str) -> dict:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _decimals(values) -> list[float]:
    """float32 values float[N] as the shortest decimals that read back as them (Python floats)."""
    return [float(np.format_float_positional(v)) for v in np.asarray(values, np.float32)]


def _span(seeds) -> str:
    return str(seeds[0]) if len(seeds) == 1 else f"{seeds[0]}..{seeds[-1]}"
