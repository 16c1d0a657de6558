"""Two variants of the supernet's programs side by side: the derivative barriers at the cell
nodes (``jaxnas.spaces.fusion``) on and off, the cells rematerialized (``space.remat``) or not,
depthwise convolutions rewritten on the CPU (``jaxnas.spaces.depthwise``: dense ones, taps in a
scanned cell's edges) or XLA's native ones, or an NB201
stage's cells (a DARTS cell's edges) as one ``lax.scan`` (``space.scan``) or unrolled.

    python -m experiments.bench_fusion --space=nb201 --C=16 --cells=5 --batch=64
    python -m experiments.bench_fusion --space=darts --C=16 --cells=8 --batch=32 --compare=remat
    python -m experiments.bench_fusion --space=darts --C=16 --cells=3 --batch=32 --compare=depthwise
    python -m experiments.bench_fusion --space=nb201 --C=16 --cells=5 --batch=64 --compare=scan

For one supernet and batch it compiles, with the option on and off: the weight gradient of the
training loss with alpha an argument (as in a search step), the same gradient with alpha a
compile-time constant, and a Hessian-vector product (forward over reverse). Then it times the
programs in turns, one call each per round, for ``--rounds`` rounds, and prints a markdown
table: median milliseconds, compile seconds, XLA's estimates of temporary memory and of the
bytes read and written, and the time with the option off over the time with it on. Remat and
the depthwise rewrite and scan are compared with the barriers on.
"""

import platform
import statistics
import time

import jax
import jax.numpy as jnp
from absl import app, flags

from experiments.bench_common import compile_program, supernet_problem
from experiments.tables import gigabytes, markdown_table, megabytes
from jaxnas import hypergrad as hg
from jaxnas.spaces import cells, depthwise, fusion, scan_edges

_ROUNDS = flags.DEFINE_integer("rounds", 5, "Timed rounds (after one warm-up call each).")
_COMPARE = flags.DEFINE_enum("compare", "barriers", ["barriers", "remat", "depthwise", "scan"],
                             "The option turned on and off: the derivative barriers, remat, "
                             "the CPU's depthwise rewrite (dense; taps in scanned edges), or "
                             "space.scan (NB201: a stage's cells, DARTS: a cell's edges as one "
                             "lax.scan).")
_DENSE_IS_FASTER = depthwise.dense_is_faster


def _programs(on: bool):
    """``{row: (compiled, args, compile s, temp bytes, bytes accessed)}`` with the compared
    option on or off (barriers off: the cells call an identity in their place while traced;
    depthwise off: XLA's native depthwise convolutions)."""
    barriers = on or _COMPARE.value != "barriers"
    for module in (cells, scan_edges):
        module.derivative_barrier = fusion.derivative_barrier if barriers else (lambda x: x)
    if _COMPARE.value == "depthwise":
        depthwise.dense_is_faster = lambda: on
    options = {_COMPARE.value: on} if _COMPARE.value in ("remat", "scan") else {}
    label, loss, params, alpha, (train, _) = supernet_problem(**options)
    v = jax.tree.map(lambda x: jnp.ones_like(x) * 1e-2, params)
    rows = {"weight gradient": (lambda w, a: jax.grad(loss)(w, a, train), (params, alpha)),
            "weight gradient, alpha a constant": (lambda w: jax.grad(loss)(w, alpha, train),
                                                  (params,)),
            "HVP": (lambda w, a, v: hg.hvp(lambda w_: loss(w_, a, train), w, v),
                    (params, alpha, v))}
    out = {}
    for name, (fn, args) in rows.items():
        compiled, seconds, temp, accessed = compile_program(fn, *args)
        jax.block_until_ready(compiled(*args))
        out[name] = (compiled, args, seconds, temp, accessed)
        print(f"  compiled {name}, {_COMPARE.value} {'on' if on else 'off'}: {seconds:.1f} s",
              flush=True)
    cells.derivative_barrier = scan_edges.derivative_barrier = fusion.derivative_barrier
    depthwise.dense_is_faster = _DENSE_IS_FASTER
    return label, out


def main(argv):
    del argv
    label, on = _programs(True)
    _, off = _programs(False)
    times = {(name, o): [] for name in on for o in (True, False)}
    for _ in range(_ROUNDS.value):
        for name in on:
            for option, programs in ((True, on), (False, off)):
                compiled, args = programs[name][:2]
                start = time.perf_counter()
                jax.block_until_ready(compiled(*args))
                times[(name, option)].append(time.perf_counter() - start)
    device = jax.devices()[0]
    print(f"\n{label}; {device.device_kind} ({device.platform}), {platform.processor() or ''} "
          f"jax {jax.__version__}, median of {_ROUNDS.value} rounds\n")
    rows = []
    for name in on:
        ms = {o: 1e3 * statistics.median(times[(name, o)]) for o in (True, False)}
        for option, programs in ((False, off), (True, on)):
            _, _, seconds, temp, accessed = programs[name]
            rows.append([name, "on" if option else "off", f"{ms[option]:.1f}", f"{seconds:.1f}",
                         megabytes(temp), gigabytes(accessed),
                         f"{ms[False] / ms[True]:.2f}" if option else ""])
    print(markdown_table(["computation", _COMPARE.value, "time (ms)", "compile (s)",
                          "temp memory (MB)", "bytes accessed (GB)", "time off / on"], rows))


if __name__ == "__main__":
    app.run(main)
