"""A run's workdir: checked before anything is written, locked while a run owns it, and its
config recorded.

A workdir belongs to one run. Its config is saved as ``config.json`` on the first run; a later
run with a different config is refused, except for the ``RUN_CONTROL`` fields (what is logged,
how far the run goes, how the step is compiled) and the fields the user allows to change on
resume (``allow_changes``, e.g. ``optim_w.lr`` after a NaN), which are recorded in the config's
``history``. Fields that would make the checkpoints meaningless (``FROZEN``) never change.
"""

import contextlib
import datetime
import fcntl
import json
import os
import socket

from jaxnas.distributed import chief_text, every_process, on_chief
from jaxnas.files import write_json
from jaxnas.log import logger

RUN_CONTROL = ("max_steps", "log_every", "checkpoint_every", "keep_checkpoints",
               "eigenvalue_every", "eigenvalue_iters", "nb201_table", "data_dir",
               "eval_every", "data_threads",
               "space.scan", "space.remat",  # the same values, up to float rounding:
               "strategy.linearize", "strategy.hypergradient.linearize",
               "strategy.neumann_loop", "strategy.hypergradient.loop")
FROZEN = ("space", "strategy", "dataset", "seed", "batch_size", "train_portion",
          "optim_alpha.name", "num_classes", "imagenet_stem", "data_pipeline")
# The values that mean "off" for a field a saved config lacks ("memory": config.data_pipeline's).
OFF = (0, "", None, False, {}, "memory")
LOCK = ".lock"


class WorkdirBusyError(RuntimeError):
    """Another process runs in the workdir."""


def check_workdir(workdir: str) -> None:
    """Clear errors for a workdir no run can use; writes nothing."""
    if not workdir:
        raise ValueError("--workdir is empty; give the directory the run writes to.")
    if os.path.exists(workdir) and not os.path.isdir(workdir):
        raise NotADirectoryError(f"The workdir {workdir!r} is a file; give a directory.")
    existing = workdir
    while not os.path.exists(existing):
        existing = os.path.dirname(os.path.abspath(existing))
    if not os.access(existing, os.W_OK | os.X_OK):
        raise PermissionError(f"Cannot write to {existing!r}, so not to the workdir "
                              f"{workdir!r}; choose a writable directory.")


@contextlib.contextmanager
def locked(workdir: str):
    """Creates ``workdir`` and holds an exclusive lock on it (``WORKDIR/.lock``, with the pid,
    host and start time of the owner) until the block ends. The kernel releases the lock when
    the owner dies, so the lock file of a killed run is taken over. In a multi-process run,
    process 0 takes it for all (a busy workdir is an error on every process), and every process
    checks that it sees the lock file process 0 wrote (``check_shared``)."""
    path = os.path.join(workdir, LOCK)
    lock = on_chief(_take_lock, workdir, path)
    try:
        check_shared(workdir, path)
        yield
    finally:
        if lock is not None:
            os.unlink(path)  # while still holding the lock
            lock.close()


def check_shared(workdir: str, path: str) -> None:
    """A ValueError on every process unless every process reads in its ``path`` (a file in
    ``workdir``) what process 0 wrote there: the processes of a run must share the workdir."""
    written = chief_text(_read(path) or "")
    blind = [i for i, ok in enumerate(every_process(_read(path) == written)) if not ok]
    if blind:
        raise ValueError(
            f"The workdir {workdir!r} is not shared: process{'es' * (len(blind) > 1)} "
            f"{', '.join(map(str, blind))} cannot see the file {LOCK} that process 0 wrote in "
            "it. The processes of a run save one checkpoint together, so the workdir must be on "
            "a filesystem that every host mounts at the same path (NFS, a cluster filesystem, "
            "a bucket through gcsfuse); pass such a --workdir.")


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except OSError:
        return None


def _take_lock(workdir: str, path: str):
    """The open lock file of ``workdir``, locked and naming this process as its owner."""
    os.makedirs(workdir, exist_ok=True)
    f = open(path, "a+", encoding="utf-8")  # noqa: SIM115 -- held open until locked() ends
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.seek(0)
        owner = f.read().strip() or "another process"
        f.close()
        raise WorkdirBusyError(f"The workdir {workdir!r} is in use by {owner}; wait for that "
                               "run to end (or stop it), or use another --workdir.") from None
    f.seek(0)
    previous = f.read().strip()
    if previous:
        logger.info("Took over the lock of an ended run (%s) in %s.", previous, workdir)
    f.seek(0)
    f.truncate()
    f.write(f"pid {os.getpid()} on {socket.gethostname()} since "
            f"{datetime.datetime.now().isoformat(timespec='seconds')}\n")
    f.flush()
    return f


def _flat(config: dict, prefix: str = "") -> dict:
    """Dotted keys -> values, the run-control fields and the history left out."""
    out = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if name in RUN_CONTROL or name == "history":
            continue
        if isinstance(value, dict):
            out.update(_flat(value, f"{name}."))
        else:
            out[name] = value
    return out


def _covers(prefixes, field: str) -> bool:
    return any(field == p or field.startswith(f"{p}.") for p in prefixes)


def read_config(workdir: str) -> dict | None:
    """The ``config.json`` of ``workdir``, None if there is none; a clear error if it is not
    readable JSON."""
    path = os.path.join(workdir, "config.json")
    if not os.path.exists(path):
        return None
    try:
        with open(path, encoding="utf-8") as f:
            saved = json.load(f)
    except ValueError as e:
        raise ValueError(f"The workdir's config file {path!r} is damaged ({e}); restore it, or "
                         "use a new --workdir.") from None
    if not isinstance(saved, dict):
        raise ValueError(f"The workdir's config file {path!r} is not a JSON object; restore "
                         "it, or use a new --workdir.")
    return saved


def claim_workdir(workdir: str, config, allow_changes=()) -> None:
    """Saves ``config`` in ``workdir`` on the first run; on a later run refuses a different
    one, unless every difference is in ``allow_changes`` (dotted field names or prefixes) and
    none is ``FROZEN``; an allowed change is written to the config and its ``history``.

    In a multi-process run, process 0 checks and writes while the others wait, and a refusal is
    an error on every process (``jaxnas.distributed.on_chief``): no process reads the config
    while another writes it."""
    on_chief(_claim, workdir, config, allow_changes)


def _claim(workdir: str, config, allow_changes) -> None:
    current = json.loads(config.to_json())
    fields = _flat(current)
    unknown = [a for a in allow_changes
               if not any(_covers([a], f) for f in fields) and a not in RUN_CONTROL]
    if unknown:
        raise ValueError(f"--allow_config_change names {unknown}, which are not config fields.")
    saved = read_config(workdir)
    path = os.path.join(workdir, "config.json")
    if saved is None:
        os.makedirs(workdir, exist_ok=True)
        write_json(path, current, sort_keys=True)
        return
    old = _flat(saved)
    # A field the saved config lacks, at its "off" value, is one added to jaxnas since: no change.
    diff = sorted(k for k in set(old) | set(fields) if old.get(k) != fields.get(k)
                  and (k in old or fields[k] not in OFF))
    if not diff:
        return
    details = "; ".join(f"{k}: {old.get(k)!r} -> {fields.get(k)!r}" for k in diff)
    frozen = [k for k in diff if _covers(FROZEN, k)]
    if frozen:
        raise ValueError(f"The workdir {workdir!r} holds a run with a different config "
                         f"({details}). {', '.join(frozen)} cannot change in a run: its "
                         "checkpoints would be meaningless. Use a new --workdir, or rerun with "
                         "the saved config to resume.")
    refused = [k for k in diff if not _covers(allow_changes, k)]
    if refused:
        raise ValueError(f"The workdir {workdir!r} holds a run with a different config "
                         f"({details}). Rerun with the saved config to resume, pass "
                         f"--allow_config_change={','.join(refused)} to resume with the change "
                         "(recorded in config.json), or use a new --workdir.")
    history = saved.get("history", []) + [{
        "time": datetime.datetime.now().isoformat(timespec="seconds"),
        "changed": {k: [old.get(k), fields.get(k)] for k in diff}}]
    write_json(path, {**current, "history": history}, sort_keys=True)
    logger.info("Resuming %s with the config changed: %s.", workdir, details)
