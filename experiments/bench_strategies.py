"""Times one search step of every strategy on the same supernet, side by side, as a ratio to
DARTS first order.

    python -m experiments.bench_strategies --space=nb201 --C=8 --cells=2 --batch=32

Each row is the real jitted search step (``jaxnas.engine.search_loop.make_step``) of a strategy
built as its config builds it, on the same random batches. All programs are compiled first; then
the rows are timed in turns, one step each per round, for ``--rounds`` rounds, so that every row
sees the same machine state; the table gives the median. The scheduled strategies (CS10, FIMT)
are timed twice, forced to move the architecture at every step through the schedule's
conditional and forced never to move; their mean step at the paper's frequency (one move per 10
steps for CS10, per 11 for FIMT with a steady statistic) follows from the two. ``none`` is
skipped in the supernet's computation, so the CRB rows (without it) run the same network. The
depth-regularizer and TND-NAS rows run in the DARTS space only; TND-NAS is timed with the
architecture moving (M=10 sampled cells scored on the val batch, one REINFORCE update, then the
weight step) and in its weight-only warm-up epochs. The E²NAS rows need a graph VAE trained on the space's
cells (``--vae``, e.g. the workdir of ``vae_nb201.py:small`` or ``vae_darts.py:small``; the
``ste_logits`` row runs on NB201 only) and are timed beside GDAS, the single-path search they
build on.
Prints a markdown table and writes JSON (``--out``).
"""

import json
import platform
import statistics
import time

import jax
import numpy as np
from absl import app, flags
from ml_collections import ConfigDict

from experiments.tables import markdown_table
from jaxnas.data import data_mesh, replicated
from jaxnas.engine.optim import cosine_by_epoch, weight_optimizer
from jaxnas.engine.search_loop import init_state, make_step
from jaxnas.spaces import get_space
from jaxnas.strategies import SearchProblem, get_strategy

_SPACE = flags.DEFINE_enum("space", "nb201", ["nb201", "darts"], "Search space.")
_C = flags.DEFINE_integer("C", 8, "Initial channels.")
_CELLS = flags.DEFINE_integer("cells", 2, "NB201: cells per stage (N); DARTS: cells (layers).")
_BATCH = flags.DEFINE_integer("batch", 32, "Batch size.")
_ROUNDS = flags.DEFINE_integer("rounds", 22, "Timed rounds (after one warm-up step per row).")
_ROWS = flags.DEFINE_list("rows", [], "Only these rows, comma-separated (default: all).")
_OUT = flags.DEFINE_string("out", "", "Where to write the results as JSON.")
_VAE = flags.DEFINE_string("vae", "", "Workdir of a trained graph VAE, for the E²NAS rows.")

ADAM_NO_WD = {"name": "adam", "weight_decay": 0.0}
VADAM = {"name": "vadam", "num_data": 25000}
SECOND = {"name": "unrolled"}

# name -> (strategy, optim_alpha, options, ops without `none`)
ROWS = {
    "darts first order": ("darts", None, {}, False),
    "constrained: softmax alternating": ("constrained", None, {}, False),
    "constrained: +PR": ("constrained", None, {"regularizer": "proximity"}, False),
    "constrained: +ADMM": ("constrained", None, {"regularizer": "admm"}, False),
    "constrained: +CRB": ("constrained", ADAM_NO_WD, {"activation": "crb"}, True),
    "constrained: +ADMM+CRB": ("constrained", ADAM_NO_WD,
                               {"activation": "crb", "regularizer": "admm"}, True),
    "constrained: CS10 moving": ("constrained", None, {"schedule": "constant", "ratio": 1},
                                  False),
    "constrained: CS10 not moving": ("constrained", None,
                                      {"schedule": "constant", "ratio": 10 ** 9}, False),
    "constrained: FIMT moving": ("constrained", None, {"schedule": "fimt", "fimt_tau0": 1e30},
                                  False),
    "constrained: FIMT not moving": ("constrained", None,
                                      {"schedule": "fimt", "fimt_tau0": 1e-30}, False),
    "balenas first order M=1": ("balenas", VADAM, {}, False),
    "balenas first order M=2": ("balenas", VADAM, {"num_samples": 2}, False),
    "balenas first order depth regularizer": ("balenas", VADAM, {"depth_weight": 0.05},
                                                 False),
    "darts2 exact": ("darts2", None, {}, False),
    "balenas second order M=1": ("balenas", VADAM, {"hypergradient": SECOND}, False),
    "tnd M=10 moving": ("tnd", None, {"warmup_epochs": 0}, False),
    "tnd warm-up (weights only)": ("tnd", None, {"warmup_epochs": 10 ** 9}, False),
    "gdas": ("gdas", None, {}, False),
    "e2nas ste_logits": ("e2nas", None, {"mode": "ste_logits"}, False),
    "e2nas decoder_st": ("e2nas", None, {"mode": "decoder_st"}, False),
    "e2nas-r decoder_st depth regularizer": ("e2nas", None,
                                             {"mode": "decoder_st", "depth_weight": 0.05}, False),
}
DARTS_ONLY = ("depth", "tnd")
NB201_ONLY = ("ste_logits",)


def _setup(row):
    name, rule, options, no_none = ROWS[row]
    cells = {"N" if _SPACE.value == "nb201" else "layers": _CELLS.value}
    space = get_space(_SPACE.value, C=_C.value, **cells)
    if no_none:
        space = get_space(_SPACE.value, C=_C.value, ops=space.ops[1:], node_bn=False, **cells)
    if name == "e2nas":
        options = {**options, "vae": _VAE.value}
    strategy = get_strategy(name, space, rule, **options)
    schedule = cosine_by_epoch(0.025, 0.001, 50, 1000)
    optim_w = ConfigDict(dict(lr=0.025, momentum=0.9, weight_decay=3e-4, grad_clip=5.0))
    net = space.supernet(10, single_path=strategy.single_path)
    problem = SearchProblem(net, (0.5,) * 3, (0.25,) * 3, True, 0,
                            weight_optimizer(optim_w, schedule), schedule, 50000)
    state = init_state(0, strategy, space, problem, (32, 32, 3))
    mesh = data_mesh()
    per_step = {"train": strategy.train_batches, "val": 1}
    return make_step(strategy, problem, per_step, mesh), jax.device_put(state, replicated(mesh))


def main(argv):
    del argv
    excluded = NB201_ONLY if _SPACE.value == "darts" else DARTS_ONLY
    rows = _ROWS.value or [row for row in ROWS if not any(w in row for w in excluded)
                           and (_VAE.value or "e2nas" not in row)]
    unknown = sorted(set(rows) - set(ROWS))
    if unknown:
        raise app.UsageError(f"Unknown rows {unknown}; the rows are {list(ROWS)}.")
    rng = np.random.default_rng(0)
    batches = {k: {"image": rng.integers(0, 255, (1, _BATCH.value, 32, 32, 3), dtype=np.uint8),
                   "label": rng.integers(0, 10, (1, _BATCH.value)).astype(np.int32)}
               for k in ("train", "val")}
    steps, states, compile_s = {}, {}, {}
    for row in rows:
        start = time.perf_counter()
        steps[row], state = _setup(row)
        state, metrics = steps[row](state, batches)
        states[row] = jax.block_until_ready(state)
        compile_s[row] = time.perf_counter() - start
        print(f"compiled {row} in {compile_s[row]:.1f} s", flush=True)
    times = {row: [] for row in rows}
    for _ in range(_ROUNDS.value):
        for row in rows:
            start = time.perf_counter()
            states[row], metrics = steps[row](states[row], batches)
            jax.block_until_ready(states[row])
            times[row].append(time.perf_counter() - start)
    base = statistics.median(times[rows[0]])
    results = []
    print(f"\n{_SPACE.value} C={_C.value} cells={_CELLS.value} batch={_BATCH.value}, "
          f"{_ROUNDS.value} rounds, {platform.processor() or platform.machine()}, "
          f"{jax.devices()[0].platform}\n")
    medians = {row: statistics.median(times[row]) for row in rows}
    for row in rows:
        value = medians[row]
        results.append({"row": row, "ms": 1e3 * value, "ratio": value / base,
                        "compile_s": compile_s[row], "times": times[row]})
    for name, period in (("CS10", 10), ("FIMT", 11)):
        moving, still = (medians.get(f"constrained: {name} {s}") for s in ("moving",
                                                                         "not moving"))
        if moving is not None and still is not None:
            value = (moving + (period - 1) * still) / period
            results.append({"row": f"constrained: {name}, mean of 1 move per {period} steps",
                            "ms": 1e3 * value, "ratio": value / base})
    print(markdown_table(
        ["strategy", "ms / step", f"/ {rows[0]}", "compile + first step (s)"],
        [[r["row"], f"{r['ms']:.1f}", f"{r['ratio']:.2f}",
          f"{r['compile_s']:.1f}" if "compile_s" in r else ""] for r in results]))
    if _OUT.value:
        with open(_OUT.value, "w", encoding="utf-8") as f:
            json.dump({"space": _SPACE.value, "C": _C.value, "cells": _CELLS.value,
                       "batch": _BATCH.value, "rounds": _ROUNDS.value, "rows": results}, f,
                      indent=1)


if __name__ == "__main__":
    app.run(main)
