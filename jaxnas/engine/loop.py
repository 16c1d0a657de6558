"""Pieces both loops (search and retraining) share: the dataset as ``config.data_pipeline`` says
(in memory or streamed), resuming, each step's batches from the host (read in the loop, or
streamed by grain), the wall time kept in the state, the check for a non-finite loss before
anything is logged or saved, and Python's garbage collector paused while a step is traced."""

import contextlib
import gc

import jax
import jax.numpy as jnp
import numpy as np

from jaxnas.data import check_pipeline, load_dataset, loader, open_streaming, replicated
from jaxnas.distributed import chief_value
from jaxnas.engine import config as config_lib
from jaxnas.log import logger


def validate_data(config) -> None:
    """Clear errors for the data pipeline fields: ``data_pipeline``, ``image_size``,
    ``data_threads``, ``data_workers``."""
    config_lib.require_nonnegative(config, "image_size", "data_threads", "data_workers")
    check_pipeline(config.data_pipeline)
    if config.image_size and config.data_pipeline != "grain":
        raise ValueError(f"config.image_size={config.image_size} resizes streamed images only; "
                         "set config.data_pipeline='grain', or image_size=0.")


def check_in_memory(dataset: str) -> None:
    """Refuses a dataset the in-memory pipeline cannot hold (ImageNet through tfds)."""
    if dataset.startswith("tfds:imagenet2012"):
        raise ValueError(
            f"config.dataset={dataset!r}: the in-memory pipeline (jaxnas.data) holds a whole "
            "dataset as one uint8 array, which ImageNet's ~1.3M variable-size images do not "
            "fit. Stream it with --config.data_pipeline=grain --config.image_size=224, or pass "
            "images resized to a fixed size as --config.dataset=npz:PATH.")


def open_data(config):
    """The dataset of ``config``: streamed (``open_streaming``) when ``config.data_pipeline`` is
    ``grain``, else held in memory (``load_dataset``). Both read rows with ``.train.read`` and
    ``.test.read``."""
    if config.data_pipeline == "grain":
        return open_streaming(config.dataset, config.data_dir or None, config.image_size,
                              config.num_classes)
    check_in_memory(config.dataset)
    return load_dataset(config.dataset, config.data_dir or None, config.num_classes)


def resume(checkpoints, initial_state, mesh):
    """The newest restorable checkpoint (or ``initial_state``), replicated over ``mesh``."""
    state = checkpoints.restore_latest(initial_state)
    if state is None:
        state = initial_state
    else:
        logger.info("Resumed from step %d of %s.", int(state.step), checkpoints.workdir)
    return jax.device_put(state, replicated(mesh))


def replicated_seconds(seconds: float, mesh):
    """A wall time as a float32 replicated over ``mesh``: process 0's ``seconds`` on every process
    of a multi-process run (their clocks differ)."""
    return jax.device_put(chief_value(np.float32(seconds)), replicated(mesh))


def step_batches(read, start: int, total: int, config, restored=None):
    """An iterator of ``read(start)``, ..., ``read(total - 1)`` (``StepReader``: this process's
    rows of each step's batches): read in the loop when ``config.data_pipeline`` is ``memory``;
    read ahead by grain (``config.data_threads`` threads, ``config.data_workers`` worker
    processes) when it is ``grain``, from the loader state ``restored`` (None: step 0), and
    then with ``get_state()`` for the checkpoint. ``close()`` it when done (grain's threads and
    workers stop)."""
    if config.data_pipeline == "memory":
        return (read(step) for step in range(start, total))
    iterator = iter(loader(read, total, config.data_threads, config.data_workers))
    if restored is None and start:
        raise ValueError(f"The checkpoint of step {start} holds no state of the data loader, "
                         "so the run cannot go on with the batches it would have seen; resume "
                         "it with the config.data_pipeline it was saved with.")
    if restored is not None:
        try:
            iterator.set_state(restored)
        except Exception as e:  # noqa: BLE001 -- grain raises several types for a foreign state
            raise ValueError(f"The data loader's state in the checkpoint of step {start} does "
                             f"not fit this loader ({type(e).__name__}: {e}); resume with the "
                             "config.data_workers the run was saved with.") from None
    return iterator


@contextlib.contextmanager
def collector_paused():
    """Python's cyclic garbage collector off inside, its setting restored after. Tracing a large
    step creates hundreds of thousands of objects that outlive it (the jaxpr), and each full
    collection they set off walks the whole heap: 2.1 of the 8.2 s that ``darts2_nb201.py``
    took to trace its step (BENCHMARKS.md). Objects are still freed by reference counting
    inside; only reference cycles wait."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def first_nonfinite_step(old, new, metrics: dict):
    """``old.nonfinite_step``, or the number of the step just done (``old.step + 1``, as the
    progress line counts) when that is unset (-1) and a metric of the step or a floating-point
    leaf of the ``new`` state is NaN or infinite: the on-device record ``check_finite`` reads."""
    leaves = [v for v in jax.tree.leaves((metrics, new))
              if jnp.issubdtype(jnp.result_type(v), jnp.inexact)]
    # One reduction over all leaves raveled together: one per leaf compiled for minutes on
    # XLA:CPU for the 4674 leaves of an 8-cell DARTS search state (BENCHMARKS.md).
    finite = jnp.all(jnp.isfinite(jnp.concatenate([jnp.ravel(v) for v in leaves])))
    return jnp.where((old.nonfinite_step < 0) & ~finite, old.step + 1, old.nonfinite_step)


def check_finite(state, checkpoints, advice: str) -> None:
    """Raises FloatingPointError if ``state.nonfinite_step`` records a NaN or infinite loss or
    state."""
    bad = int(state.nonfinite_step)
    if bad >= 0:
        last = checkpoints.latest_step()
        kept = (f"The last good checkpoint (step {last}) is kept in {checkpoints.directory}."
                if last is not None else "No checkpoint was written before it.")
        raise FloatingPointError(f"The loss or the state became NaN or infinite at step {bad}. "
                                 f"{kept} {advice}")
