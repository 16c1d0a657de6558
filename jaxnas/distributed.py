"""Runs on several processes (several hosts, or several processes on one host) with
``jax.distributed``.

A multi-process run is one program over the devices of every process (``jaxnas.data.data_mesh``):
each process runs every step, loads only its rows of each global batch, and takes part in saving
and restoring the checkpoints (orbax's multi-process protocol, in the workdir they share). Process
0 alone writes the rest of the workdir (``config.json``, metrics, events, the genotype, pictures)
and logs progress; the other processes log warnings and errors only.

``start`` decides whether a run has several processes and starts ``jax.distributed``:

- ``coordinator_address``, ``num_processes`` or ``process_id`` given: started with them (JAX
  fills in what is missing from the cluster environment, if any);
- none given: started only when the cluster environment that JAX's own detection finds (SLURM
  under ``srun``, Open MPI under ``mpirun``, a Cloud TPU pod slice, Kubernetes) reports more than
  one process; a plain run, or a cluster job of one process, does not start it at all, and runs
  exactly as before.
"""

import contextlib
import logging
import os
import sys
import threading
import warnings

import jax
import numpy as np

from jaxnas.log import logger

DEFAULT_TIMEOUT = 300
"""Seconds every process has to reach the coordinator (``jax.distributed``'s default)."""

_MESSAGE_BYTES = 2048


class OtherProcessError(RuntimeError):
    """Another process of the run failed with an error this process cannot see by itself."""


def cluster_processes() -> int:
    """How many processes the cluster environment that ``jax.distributed.initialize()`` would
    detect says the run has (1 when it detects none). Uses JAX's own detectors, in JAX's order,
    so the decision is JAX's; Kubernetes' warning about a missing ``kubernetes`` package is
    hushed (a plain run in a pod is not a cluster run)."""
    from jax._src import clusters  # what jax.distributed.initialize() consults

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for env in clusters.ClusterEnv._cluster_types:
            if not env.opt_in_only_method and env.is_env_present():
                return env.get_process_count()
    return 1


def start(coordinator_address: str | None = None, num_processes: int | None = None,
          process_id: int | None = None, timeout: int = DEFAULT_TIMEOUT) -> bool:
    """Starts ``jax.distributed`` when the run has several processes (module docstring) and
    returns whether it did. Must come before anything uses JAX's devices.

    Cross-process collectives on CPU use gloo (unless ``JAX_CPU_COLLECTIVES_IMPLEMENTATION``
    says otherwise). When not every process has reached the coordinator within ``timeout``
    seconds, this process prints ``error: ...`` naming the address and exits with status 1
    (JAX itself would abort it with a C++ stack trace a little later)."""
    address = coordinator_address or os.environ.get("JAX_COORDINATOR_ADDRESS")
    given = [v for v in (address, num_processes, process_id) if v is not None]
    if len(given) < 3 and cluster_processes() <= 1:
        if given:
            raise ValueError("A multi-process run started by hand needs --coordinator_address, "
                             "--num_processes and --process_id, all three: the same address "
                             "and count on every process, and ids 0 to N-1.")
        return False
    if num_processes is not None and process_id is not None \
            and not 0 <= process_id < num_processes:
        raise ValueError(f"--process_id={process_id} is not one of 0 to {num_processes - 1} "
                         f"(--num_processes={num_processes}).")
    if not os.environ.get("JAX_CPU_COLLECTIVES_IMPLEMENTATION"):
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
    with _deadline(timeout, _unreachable(address, num_processes, process_id, timeout)):
        jax.distributed.initialize(coordinator_address, num_processes, process_id,
                                   initialization_timeout=timeout + 30)  # ours fires first
    if jax.process_index() != 0:
        logger.setLevel(logging.WARNING)
    logger.info("Process 0 of %d; %d devices in all.", jax.process_count(), jax.device_count())
    return True


def _unreachable(address, num_processes, process_id, timeout) -> str:
    where = f"the coordinator at {address}" if address else "the cluster's coordinator"
    if process_id == 0:
        return (f"not all {num_processes or 'the'} processes reached {where} (this process, "
                f"0, runs it) within {timeout} s; start every process with the same "
                "--coordinator_address and --num_processes and a distinct --process_id, or "
                "allow them longer with --distributed_timeout.")
    return (f"could not reach {where} within {timeout} s, or not every process joined; start "
            "process 0 (on that host) with the same --coordinator_address and --num_processes, "
            "check that the address is reachable from here, or allow longer with "
            "--distributed_timeout.")


@contextlib.contextmanager
def _deadline(seconds: float, message: str):
    """Ends the process with ``error: message`` (status 1) if the block is still running after
    ``seconds``: a jax.distributed start that fails cannot be interrupted, only abandoned."""

    def expire():
        print(f"error: {message}", file=sys.stderr, flush=True)
        os._exit(1)

    timer = threading.Timer(seconds, expire)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()


def is_chief() -> bool:
    """Whether this process writes the run's files (process 0; always, with one process)."""
    return jax.process_index() == 0


def on_chief(fn, *args, **kwargs):
    """Runs ``fn(*args, **kwargs)`` on process 0 only (a write to the shared workdir, a check only
    it can make) and returns its result there (None on the others), which wait for it. When it
    raises, every process raises: process 0 its own error, the others an ``OtherProcessError``
    with its message, so that no process is left waiting for another. With one process, simply
    ``fn(*args, **kwargs)``."""
    if jax.process_count() == 1:
        return fn(*args, **kwargs)
    error, result = None, None
    if is_chief():
        try:
            result = fn(*args, **kwargs)
        except Exception as e:  # noqa: BLE001 -- shared with the other processes, then raised
            error = e
    message = chief_text(f"{type(error).__name__}: {error}" if error else "")
    if error is not None:
        raise error
    if message:
        raise OtherProcessError(f"process 0 failed: {message}")
    return result


def chief_value(value):
    """Process 0's ``value`` (a numpy array or scalar) on every process, for what each process
    measures by itself (a clock) where all need one value (a replicated array must hold the same
    everywhere). With one process, ``value``."""
    if jax.process_count() == 1:
        return value
    from jax.experimental import multihost_utils

    return np.asarray(multihost_utils.broadcast_one_to_all(value))


def every_process(flag: bool) -> list[bool]:
    """Each process's ``flag``, in process order, on every process (``[flag]`` with one)."""
    if jax.process_count() == 1:
        return [bool(flag)]
    from jax.experimental import multihost_utils

    return [bool(f) for f in multihost_utils.process_allgather(np.asarray(flag, np.bool_))]


def chief_text(text: str) -> str:
    """Process 0's ``text`` on every process (at most ``_MESSAGE_BYTES`` of its UTF-8)."""
    buffer = np.zeros(_MESSAGE_BYTES, np.uint8)
    encoded = text.encode()[:_MESSAGE_BYTES]
    buffer[:len(encoded)] = np.frombuffer(encoded, np.uint8)
    return chief_value(buffer).tobytes().rstrip(b"\0").decode(errors="replace")
