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
    """A 1-D mesh over every device of every process, process by process (with one process, in
    ``jax.devices()``'s order), so that each process holds one block of rows of a global batch
    (``local_rows``)."""
    devices = sorted(jax.devices(), key=lambda d: d.process_index)  # stable
    return Mesh(np.asarray(devices), ("data",))


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, P())


def batch_sharding(mesh: Mesh, batch_axis: int = 0) -> NamedSharding:
    """Shards axis ``batch_axis`` (the example axis) over the mesh."""
    return NamedSharding(mesh, P(*([None] * batch_axis), "data"))


def check_batch_size(batch_size: int, mesh: Mesh) -> None:
    """A clear error unless the global ``batch_size`` divides across the devices of ``mesh``
    (those of every process)."""
    if batch_size % mesh.size:
        processes = jax.process_count()
        where = f" of the {processes} processes" if processes > 1 else ""
        raise ValueError(
            f"The batch size {batch_size} does not divide across the {mesh.size} devices"
            f"{where}; use a multiple of {mesh.size} (e.g. "
            f"{mesh.size * max(1, batch_size // mesh.size)}).")


def local_rows(batch_size: int, mesh: Mesh | None = None) -> slice:
    """The rows of a global batch of ``batch_size`` that this process loads: those its devices
    hold in ``mesh`` (default ``data_mesh()``). Together the processes load each global batch
    once, in the order one process would; with one process, every row."""
    mesh = data_mesh() if mesh is None else mesh
    mine = [i for i, d in enumerate(mesh.devices.flat) if d.process_index == jax.process_index()]
    if mine != list(range(mine[0], mine[-1] + 1)):
        raise ValueError("The mesh interleaves the devices of different processes; build it "
                         "with data_mesh(), which keeps each process's devices together.")
    per_device = batch_size // mesh.size
    return slice(mine[0] * per_device, (mine[-1] + 1) * per_device)


def to_global(local, mesh: Mesh, batch_axis: int = 0):
    """This host's rows (a pytree of numpy arrays) -> global arrays sharded on ``batch_axis``."""
    sharding = batch_sharding(mesh, batch_axis)
    return jax.tree.map(lambda x: jax.make_array_from_process_local_data(sharding, x), local)
