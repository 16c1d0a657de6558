"""The supernet problem the benchmark scripts time, with its flags (space, size, batch, image)."""

import time

import jax
from absl import flags

from jaxnas.spaces import get_space, init_variables
from jaxnas.strategies import cross_entropy

SPACE = flags.DEFINE_enum("space", "nb201", ["nb201", "darts"], "Search space.")
C = flags.DEFINE_integer("C", 16, "Initial channels.")
CELLS = flags.DEFINE_integer("cells", 5, "NB201: cells per stage (N); DARTS: cells (layers).")
BATCH = flags.DEFINE_integer("batch", 64, "Batch size.")
IMAGE = flags.DEFINE_integer("image", 32, "Image height and width.")
SCAN = flags.DEFINE_bool("scan", None, "space.scan: NB201 each stage's cells, DARTS each cell's "
                        "edges of one stride as one lax.scan (unset: the space's default).")


def flag_space(**options):
    """The search space the flags describe (``--space``, ``--C``, ``--cells``, ``--scan``), with
    further space ``options`` (e.g. ``remat=True``)."""
    if SCAN.value is not None:
        options = {"scan": SCAN.value, **options}
    options = {"C": C.value, ("N" if SPACE.value == "nb201" else "layers"): CELLS.value,
               **options}
    return get_space(SPACE.value, **options)


def supernet_problem(**space_options):
    """The train/val losses of the supernet, its variables, alpha and two batches."""
    space = flag_space(**space_options)
    net = space.supernet(num_classes=10)
    key = jax.random.PRNGKey(0)
    alpha = {k: 1e-3 * jax.random.normal(jax.random.fold_in(key, i), shape)
             for i, (k, shape) in enumerate(sorted(space.arch_shapes().items()))}
    softmax = lambda a: jax.tree.map(lambda x: jax.nn.softmax(x, -1), a)
    shape = (BATCH.value, IMAGE.value, IMAGE.value, 3)
    batches = [(jax.random.normal(jax.random.fold_in(key, 10 + i), shape),
                jax.random.randint(jax.random.fold_in(key, 20 + i), (BATCH.value,), 0, 10))
               for i in range(2)]
    variables = init_variables(net, key, batches[0][0][:1], softmax(alpha))

    def loss(params, a, batch):
        logits, _ = net.apply({"params": params, "batch_stats": variables["batch_stats"]},
                              batch[0], softmax(a), train=True, mutable=["batch_stats"])
        return cross_entropy(logits, batch[1])

    label = f"{space.name} C={C.value} cells={CELLS.value} batch={BATCH.value}"
    return label, loss, variables["params"], alpha, batches


def compile_program(fn, *args):
    """``jax.jit(fn)`` compiled for ``args``: the executable, the compile seconds, and XLA's
    estimates of its temporary bytes and of the bytes it reads and writes (None if unknown)."""
    start = time.perf_counter()
    compiled = jax.jit(fn).lower(*args).compile()
    seconds = time.perf_counter() - start
    memory = compiled.memory_analysis()
    temp = getattr(memory, "temp_size_in_bytes", None) if memory is not None else None
    cost = compiled.cost_analysis()
    cost = (cost[0] if isinstance(cost, list) else cost) or {}
    return compiled, seconds, temp, cost.get("bytes accessed")
