"""Data parallelism over all devices of all hosts with ``jax.jit`` and ``NamedSharding``.

The mesh has one axis, ``data``. Batches are split along it; everything else (weights, batch-norm
statistics, architecture parameters, optimizer states) is replicated, so the architecture is the
same on every device by construction, and batch-norm statistics computed under ``jit`` cover the
global batch.
"""

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P


def data_mesh() -> Mesh:
    """A 1-D mesh over every device of every host."""
    return Mesh(np.asarray(jax.devices()), ("data",))


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, P())


def batch_sharding(mesh: Mesh, batch_axis: int = 0) -> NamedSharding:
    """Shards axis ``batch_axis`` (the example axis) over the mesh."""
    return NamedSharding(mesh, P(*([None] * batch_axis), "data"))


def check_batch_size(batch_size: int, mesh: Mesh) -> None:
    if batch_size % mesh.size:
        raise ValueError(
            f"The batch size {batch_size} does not divide across the {mesh.size} devices; use a "
            f"multiple of {mesh.size} (e.g. {mesh.size * max(1, batch_size // mesh.size)}).")


def local_rows(batch_size: int) -> slice:
    """The rows of a global batch that this host loads."""
    per_host = batch_size // jax.process_count()
    return slice(jax.process_index() * per_host, (jax.process_index() + 1) * per_host)


def to_global(local, mesh: Mesh, batch_axis: int = 0):
    """This host's rows (a pytree of numpy arrays) -> global arrays sharded on ``batch_axis``."""
    sharding = batch_sharding(mesh, batch_axis)
    return jax.tree.map(lambda x: jax.make_array_from_process_local_data(sharding, x), local)
