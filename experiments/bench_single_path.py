"""Times a single-path weight step against a DARTS first-order weight step on the same supernet,
side by side, and the whole single-path search steps (RandomNAS, GDAS).

    python -m experiments.bench_single_path --space=nb201 --C=16 --cells=5 --batch=64

Rows (each jitted once; all compiled before timing):

- ``darts weight step``: ``SearchProblem.weight_step`` of the mixed supernet at softmax weights
  (the weight half of a DARTS first-order step), the reference of the ratios;
- ``single-path weight step``: the same on the single-path supernet, a fresh uniformly sampled
  path every round, with the masked update;
- ``single-path with native conv gradients``: the same with XLA's own convolution gradients
  inside the edges' ``lax.switch`` (what ``jaxnas.spaces.canonical_conv`` replaces; slow on
  XLA:CPU);
- ``randomnas step``, ``gdas step``: the strategies' whole jitted search steps
  (``engine.search_loop.make_step``).

The rows are timed in turns, one call each per round, for ``--rounds`` rounds (every row sees the
same machine state and the same sequence of paths); the table gives medians and the ratio to the
DARTS weight step. Prints a markdown table and writes JSON (``--out``).
"""

import contextlib
import json
import platform
import statistics
import time
from unittest import mock

import jax
import jax.numpy as jnp
from absl import app, flags
from ml_collections import ConfigDict

from experiments import bench_common
from experiments.tables import markdown_table

from jaxnas.data import data_mesh, replicated
from jaxnas.engine.optim import cosine_by_epoch, weight_optimizer
from jaxnas.engine.search_loop import init_state, make_step
from jaxnas.spaces import init_variables
from jaxnas.spaces.paths import sample_path
from jaxnas.spaces.single_path import op_owners, path_mask
from jaxnas.strategies import SearchProblem, get_strategy

_ROUNDS = flags.DEFINE_integer("rounds", 10, "Timed rounds (after one warm-up call per row).")
_ROWS = flags.DEFINE_list("rows", [], "Only these rows, comma-separated (default: all).")
_OUT = flags.DEFINE_string("out", "", "Where to write the results as JSON.")

_OPTIM = ConfigDict(dict(lr=0.025, lr_min=0.001, momentum=0.9, nesterov=False,
                         weight_decay=3e-4, grad_clip=5.0))


def _problem(space, single_path):
    schedule = cosine_by_epoch(0.025, 0.001, 50, 100)
    return SearchProblem(space.supernet(10, single_path=single_path), (0.5,) * 3, (0.25,) * 3,
                         False, 0, weight_optimizer(_OPTIM, schedule), schedule, 5000, epochs=50)


def _weight_step_row(space, single_path, batch, native=False):
    """(call(path) -> outputs): one jitted weight step from fixed variables."""
    problem = _problem(space, single_path)
    x, y = batch
    key = jax.random.PRNGKey(0)
    alpha = {k: 1e-3 * jax.random.normal(key, s) for k, s in space.arch_shapes().items()}
    softmax = {k: jax.nn.softmax(a, -1) for k, a in alpha.items()}
    start = sample_path(space, key) if single_path else softmax
    variables = init_variables(problem.plain_net, key, x[:1], start, train=True)
    params, stats = variables["params"], variables["batch_stats"]
    opt = problem.tx_w.init(params)
    owners = op_owners(space, params)

    def step(params, stats, opt, path, x, y):
        if not single_path:
            return problem.weight_step(params, stats, opt, softmax, x, y)
        return problem.weight_step(params, stats, opt, path, x, y,
                                   mask=path_mask(owners, path))

    patch = (mock.patch("jaxnas.spaces.cells.canonical_convs", contextlib.nullcontext)
             if native else contextlib.nullcontext())
    with patch:  # the canonical convolutions are chosen while tracing
        compiled = jax.jit(step).lower(params, stats, opt, start, x, y).compile()
    return lambda path: compiled(params, stats, opt, path if single_path else start, x, y)


def _search_step_row(space, strategy_name, batch):
    strategy = get_strategy(strategy_name, space, None)
    problem = _problem(space, True)
    mesh = data_mesh()
    state = jax.device_put(init_state(0, strategy, space, problem, batch[0].shape[1:]),
                           replicated(mesh))
    to_uint8 = lambda x: jnp.clip(x * 40 + 128, 0, 255).astype(jnp.uint8)[None]  # noqa: E731
    batches = {"train": {"image": to_uint8(batch[0]), "label": batch[1][None]}}
    if strategy.val_batches:
        batches["val"] = batches["train"]
    step = make_step(strategy, problem, {"train": 1, "val": strategy.val_batches}, mesh)
    holder = {"state": state}

    def call(path):
        del path  # the strategy samples its own
        holder["state"], metrics = step(holder["state"], batches)
        return metrics

    call(None)
    return call


ROWS = {
    "darts weight step": lambda space, b: _weight_step_row(space, False, b),
    "single-path weight step": lambda space, b: _weight_step_row(space, True, b),
    "single-path with native conv gradients":
        lambda space, b: _weight_step_row(space, True, b, native=True),
    "randomnas step": lambda space, b: _search_step_row(space, "randomnas", b),
    "gdas step": lambda space, b: _search_step_row(space, "gdas", b),
}


def main(argv):
    del argv
    space = bench_common.flag_space()
    size, side = bench_common.BATCH.value, bench_common.IMAGE.value
    key = jax.random.PRNGKey(1)
    batch = (jax.random.normal(key, (size, side, side, 3)),
             jax.random.randint(key, (size,), 0, 10))
    unknown = sorted(set(_ROWS.value) - set(ROWS))
    if unknown:
        raise app.UsageError(f"Unknown --rows {unknown}; the rows are {list(ROWS)}.")
    names = [n for n in ROWS if not _ROWS.value or n in _ROWS.value]
    calls, compile_s = {}, {}
    for name in names:
        t0 = time.perf_counter()
        calls[name] = ROWS[name](space, batch)
        jax.block_until_ready(calls[name](sample_path(space, key)))
        compile_s[name] = time.perf_counter() - t0
        print(f"compiled {name}: {compile_s[name]:.0f} s", flush=True)
    times = {name: [] for name in names}
    for r in range(_ROUNDS.value):
        path = sample_path(space, jax.random.fold_in(key, r))
        for name in names:
            t0 = time.perf_counter()
            jax.block_until_ready(calls[name](path))
            times[name].append(time.perf_counter() - t0)
    ref = statistics.median(times["darts weight step"]) if "darts weight step" in times else None
    label = (f"{space.name} C={bench_common.C.value} cells={bench_common.CELLS.value} "
             f"batch={size}, "
             f"{jax.devices()[0].device_kind} ({platform.processor() or platform.machine()})")
    print(f"\n{label}, medians of {_ROUNDS.value} rounds\n")
    results = {}
    for name in names:
        ms = 1000 * statistics.median(times[name])
        ratio = ms / (1000 * ref) if ref else float("nan")
        results[name] = {"ms": ms, "ratio": ratio, "compile_s": compile_s[name],
                         "all_ms": [1000 * t for t in times[name]]}
    print(markdown_table(["row", "ms", "/ darts weight step", "first call (s)"],
                         [[name, f"{r['ms']:.0f}", f"{r['ratio']:.2f}", f"{r['compile_s']:.0f}"]
                          for name, r in results.items()]))
    if _OUT.value:
        with open(_OUT.value, "w", encoding="utf-8") as f:
            json.dump({"setup": label, "rounds": _ROUNDS.value, "rows": results}, f, indent=2)


if __name__ == "__main__":
    app.run(main)
