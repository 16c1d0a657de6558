"""The supernet problem the benchmark scripts time, with its flags (space, size, batch)."""

import jax
from absl import flags

from jaxnas.spaces import get_space, init_variables
from jaxnas.strategies import cross_entropy

_SPACE = flags.DEFINE_enum("space", "nb201", ["nb201", "darts"], "Search space.")
_C = flags.DEFINE_integer("C", 16, "Initial channels.")
_CELLS = flags.DEFINE_integer("cells", 5, "NB201: cells per stage (N); DARTS: cells (layers).")
_BATCH = flags.DEFINE_integer("batch", 64, "Batch size.")
_IMAGE = flags.DEFINE_integer("image", 32, "Image height and width.")


def supernet_problem():
    """The train/val losses of the supernet, its variables, alpha and two batches."""
    options = {"C": _C.value, ("N" if _SPACE.value == "nb201" else "layers"): _CELLS.value}
    space = get_space(_SPACE.value, **options)
    net = space.supernet(num_classes=10)
    key = jax.random.PRNGKey(0)
    alpha = {k: 1e-3 * jax.random.normal(jax.random.fold_in(key, i), shape)
             for i, (k, shape) in enumerate(sorted(space.arch_shapes().items()))}
    softmax = lambda a: jax.tree.map(lambda x: jax.nn.softmax(x, -1), a)
    shape = (_BATCH.value, _IMAGE.value, _IMAGE.value, 3)
    batches = [(jax.random.normal(jax.random.fold_in(key, 10 + i), shape),
                jax.random.randint(jax.random.fold_in(key, 20 + i), (_BATCH.value,), 0, 10))
               for i in range(2)]
    variables = init_variables(net, key, batches[0][0][:1], softmax(alpha))

    def loss(params, a, batch):
        logits, _ = net.apply({"params": params, "batch_stats": variables["batch_stats"]},
                              batch[0], softmax(a), train=True, mutable=["batch_stats"])
        return cross_entropy(logits, batch[1])

    label = f"{space.name} C={_C.value} cells={_CELLS.value} batch={_BATCH.value}"
    return label, loss, variables["params"], alpha, batches
