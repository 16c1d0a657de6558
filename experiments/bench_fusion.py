"""The derivative barriers at the cell nodes (``jaxnas.spaces.fusion``) on and off, side by side.

    python -m experiments.bench_fusion --space=nb201 --C=16 --cells=5 --batch=64
    python -m experiments.bench_fusion --space=darts --C=16 --cells=8 --batch=32

For one supernet and batch it compiles, with and without the barriers: the weight gradient of
the training loss with alpha an argument (as in a search step), the same gradient with alpha a
compile-time constant, and a Hessian-vector product (forward over reverse). Then it times the
programs in turns, one call each per round, for ``--rounds`` rounds, and prints a markdown
table: median milliseconds, compile seconds, XLA's estimates of temporary memory and of the
bytes read and written, and the time without the barriers over the time with them.
"""

import platform
import statistics
import time

import jax
import jax.numpy as jnp
from absl import app, flags

from experiments.bench_common import compile_program, supernet_problem
from jaxnas import hypergrad as hg
from jaxnas.spaces import cells, fusion

_ROUNDS = flags.DEFINE_integer("rounds", 5, "Timed rounds (after one warm-up call each).")


def _programs(barrier: bool):
    """``{row: (compiled, args, compile s, temp bytes, bytes accessed)}`` with the barriers on
    or off (off: the cells call an identity in their place while they are traced)."""
    cells.derivative_barrier = fusion.derivative_barrier if barrier else (lambda x: x)
    label, loss, params, alpha, (train, _) = supernet_problem()
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
        print(f"  compiled {name}, barriers {'on' if barrier else 'off'}: {seconds:.1f} s",
              flush=True)
    cells.derivative_barrier = fusion.derivative_barrier
    return label, out


def main(argv):
    del argv
    label, on = _programs(True)
    _, off = _programs(False)
    times = {(name, b): [] for name in on for b in (True, False)}
    for _ in range(_ROUNDS.value):
        for name in on:
            for barrier, programs in ((True, on), (False, off)):
                compiled, args = programs[name][:2]
                start = time.perf_counter()
                jax.block_until_ready(compiled(*args))
                times[(name, barrier)].append(time.perf_counter() - start)
    device = jax.devices()[0]
    print(f"\n{label}; {device.device_kind} ({device.platform}), {platform.processor() or ''} "
          f"jax {jax.__version__}, median of {_ROUNDS.value} rounds\n")
    print("| computation | barriers | time (ms) | compile (s) | temp memory (MB) | bytes accessed "
          "(GB) | time off / on |")
    print("|---|---|---|---|---|---|---|")
    for name in on:
        ms = {b: 1e3 * statistics.median(times[(name, b)]) for b in (True, False)}
        for barrier, programs in ((False, off), (True, on)):
            _, _, seconds, temp, accessed = programs[name]
            memory = f"{temp / 2**20:.0f}" if temp is not None else "n/a"
            gb = f"{accessed / 1e9:.2f}" if accessed else "n/a"
            ratio = f"{ms[False] / ms[True]:.2f}" if barrier else ""
            print(f"| {name} | {'on' if barrier else 'off'} | {ms[barrier]:.1f} | {seconds:.1f} "
                  f"| {memory} | {gb} | {ratio} |")


if __name__ == "__main__":
    app.run(main)
