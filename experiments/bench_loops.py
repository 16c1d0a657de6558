"""Loops over network updates: T weight steps of a supernet as a ``lax.scan`` of XLA's
convolutions, as a ``lax.scan`` of canonical ones (``jaxnas.spaces.ops.canonical_convs``, what
the search step runs for T > 1), and as an unrolled Python loop, in one run.

    python -m experiments.bench_loops --space=nb201 --C=16 --cells=5 --batch=64 --steps=2

XLA's CPU backend runs the kernel-gradient convolutions of a backward pass far slower inside a
loop body than outside one (jax-ml/jax#12868); canonical convolutions
(``jaxnas.spaces.canonical_conv``) run there as fast as outside, and the loop's program holds
one weight step instead of T. Prints the compile and run times of the three forms.
"""

import statistics
import time

import jax
import jax.numpy as jnp
import ml_collections
from absl import app, flags

from experiments.bench_common import supernet_problem
from jaxnas.engine.optim import cosine_by_epoch, weight_optimizer
from jaxnas.spaces.ops import canonical_convs
from jaxnas.trees import tree_index

_STEPS = flags.DEFINE_integer("steps", 2, "Weight steps per call (T).")
_REPEATS = flags.DEFINE_integer("repeats", 3, "Timed runs per form (after one warm-up).")


def main(argv):
    del argv
    label, loss, params, alpha, (train, _) = supernet_problem()
    optim = ml_collections.ConfigDict(dict(lr=0.025, momentum=0.9, nesterov=False,
                                           weight_decay=3e-4, grad_clip=5.0))
    tx = weight_optimizer(optim, cosine_by_epoch(0.025, 0.001, 50, 100))
    batches = jax.tree.map(lambda x: jnp.stack([x] * _STEPS.value), train)

    def one(carry, batch):
        w, opt = carry
        grads = jax.grad(loss)(w, alpha, batch)
        updates, opt = tx.update(grads, opt, w)
        return (jax.tree.map(lambda a, b: a + b, w, updates), opt), None

    def scanned(w, opt, batches):
        return jax.lax.scan(one, (w, opt), batches)[0]

    def canonical(w, opt, batches):
        # A new body function: lax.scan reuses a body's trace by the function's identity, which
        # would reuse ``scanned``'s trace and its XLA convolutions.
        with canonical_convs():
            return jax.lax.scan(lambda carry, batch: one(carry, batch), (w, opt), batches)[0]

    def unrolled(w, opt, batches):
        carry = (w, opt)
        for t in range(_STEPS.value):
            carry, _ = one(carry, tree_index(batches, t))
        return carry

    print(f"{label}; {_STEPS.value} weight steps; {jax.devices()[0].device_kind}")
    forms = (("lax.scan", scanned), ("lax.scan, canonical convolutions", canonical),
             ("unrolled", unrolled))
    for name, fn in forms:
        start = time.perf_counter()
        compiled = jax.jit(fn).lower(params, tx.init(params), batches).compile()
        compile_time = time.perf_counter() - start
        jax.block_until_ready(compiled(params, tx.init(params), batches))
        times = []
        for _ in range(_REPEATS.value):
            start = time.perf_counter()
            jax.block_until_ready(compiled(params, tx.init(params), batches))
            times.append(time.perf_counter() - start)
        print(f"  {name}: compile {compile_time:.1f} s, run {statistics.median(times):.2f} s")


if __name__ == "__main__":
    app.run(main)
