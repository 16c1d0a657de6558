"""Benchmarks the cost of hypergradients on the jaxnas supernets, in units of one weight gradient.

    python -m experiments.bench_hypergrad --space=nb201 --C=16 --cells=5 --batch=64
    python -m experiments.bench_hypergrad --space=darts --C=16 --cells=8 --batch=32

For one supernet and batch it compiles and times (median of ``--repeats`` runs after one warm-up):
the weight gradient of the training loss, one Hessian-vector product, and the hypergradient of
every method (first order, DARTS second order exact and finite-difference, Neumann for several K,
CG for several iteration caps, Amended). It prints a markdown table with the HVPs each used, the
wall time, the ratio to the gradient, the compile time, and XLA's estimates of the program's
temporary memory and of the bytes it reads and writes; writes the same as JSON (``--out``).
"""

import json
import platform
import statistics
import time

import jax
import jax.numpy as jnp
from absl import app, flags

from experiments.bench_common import compile_program, supernet_problem
from experiments.tables import gigabytes, markdown_table, megabytes
from jaxnas import hypergrad as hg

_REPEATS = flags.DEFINE_integer("repeats", 5, "Timed runs per function (after one warm-up).")
_NEUMANN = flags.DEFINE_list("neumann", ["1", "2", "4", "8"], "Neumann terms K to time.")
_CG = flags.DEFINE_list("cg", ["5", "10", "20"], "CG iteration counts to time.")
_OUT = flags.DEFINE_string("out", "", "Where to write the results as JSON.")


def _measure(fn, *args):
    """Median seconds, compile seconds, XLA's temp bytes and bytes accessed, and the output of
    the jitted ``fn(*args)``."""
    compiled, compile_time, temp, accessed = compile_program(fn, *args)
    output = jax.block_until_ready(compiled(*args))
    times = []
    for _ in range(_REPEATS.value):
        start = time.perf_counter()
        jax.block_until_ready(compiled(*args))
        times.append(time.perf_counter() - start)
    return statistics.median(times), compile_time, temp, accessed, output


def main(argv):
    del argv
    label, loss, params, alpha, (train, val) = supernet_problem()
    lr = 0.025
    # Alpha is an argument, as in a search step (XLA cannot treat the mixing weights as constants).
    rows = [("weight gradient", lambda w, a: jax.grad(loss)(w, a, train), (params, alpha)),
            ("weight gradient, alpha a compile-time constant",
             lambda w: jax.grad(loss)(w, alpha, train), (params,))]
    v = jax.tree.map(lambda x: jnp.ones_like(x) * 1e-2, params)
    rows.append(("HVP (forward-over-reverse)",
                 lambda w, a, v: hg.hvp(lambda w_: loss(w_, a, train), w, v), (params, alpha, v)))
    methods = [("first order", hg.FirstOrder()),
               ("DARTS 2nd order, exact", hg.Unrolled(lr, 1)),
               ("DARTS 2nd order, finite difference", hg.Unrolled(lr, 1, "finite_difference"))]
    methods += [(f"Neumann K={k}", hg.Neumann(lr, int(k))) for k in _NEUMANN.value]
    methods += [(f"CG, at most {n} iterations", hg.ConjugateGradient(int(n), 0.0, damping=1e-3))
                for n in _CG.value]
    methods += [("Amended", hg.Amended(0.1))]
    for name, method in methods:
        rows.append((name, lambda w, a, m=method: hg.hypergradient(m, loss, loss, w, a, train,
                                                                   val), (params, alpha)))
    results = []
    for name, fn, args in rows:
        seconds, compile_time, temp, accessed, output = _measure(fn, *args)
        hvps = int(output[1]["hvps"]) if isinstance(output, tuple) else None  # (grad, info)
        results.append({"name": name, "seconds": seconds, "compile_seconds": compile_time,
                        "temp_bytes": temp, "bytes_accessed": accessed, "hvps": hvps})
        used = "" if hvps is None else f", {hvps} HVPs"
        print(f"  {name}: {seconds * 1e3:.1f} ms{used}, compile {compile_time:.1f} s", flush=True)
    grad = results[0]["seconds"]
    device = jax.devices()[0]
    print(f"\n{label}; {device.device_kind} ({device.platform}), {platform.processor() or ''} "
          f"jax {jax.__version__}, median of {_REPEATS.value}\n")
    print(markdown_table(
        ["computation", "HVPs", "time (ms)", "/ gradient", "compile (s)", "temp memory (MB)",
         "bytes accessed (GB)"],
        [[r["name"], "" if r["hvps"] is None else r["hvps"], f"{r['seconds'] * 1e3:.1f}",
          f"{r['seconds'] / grad:.2f}", f"{r['compile_seconds']:.1f}",
          megabytes(r["temp_bytes"]), gigabytes(r["bytes_accessed"], digits=1)]
         for r in results]))
    if _OUT.value:
        with open(_OUT.value, "w", encoding="utf-8") as f:
            json.dump({"setup": label, "device": str(device), "jax": jax.__version__,
                       "results": results}, f, indent=2)


if __name__ == "__main__":
    app.run(main)
