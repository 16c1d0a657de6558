"""What the experiment scripts share: the run flags, the start of a multi-process run, and
errors as one clear message.

An expected error (a bad flag or config field, bad data, a busy workdir, a NaN...) prints
``error: ...`` on stderr without a Python traceback and exits with status 2 (a usage error: flags
and configs) or 1 (the run failed); ``--verbose`` or ``JAXNAS_VERBOSE=1`` shows the traceback.

The scripts that can run on several processes (``run(main, multi_process=True)``: search,
train, train_vae; ``jaxnas.distributed``) start them with ``--coordinator_address``,
``--num_processes`` and ``--process_id``, or by themselves in a cluster job of several processes
(SLURM, Open MPI, a TPU pod slice); ``--distributed=off`` keeps every process a run of its own. A
process of such a run that fails leaves at once, so that the others fail at their next exchange
with it instead of waiting for it.
"""

import difflib
import os
import runpy
import sys
import traceback

import jax
from absl import app, flags, logging
from ml_collections import config_flags

from jaxnas import distributed
from jaxnas.benchmarks import ArchNotFoundError
from jaxnas.engine.workdir import WorkdirBusyError

ALLOW_CHANGES = flags.DEFINE_list(
    "allow_config_change", [], "Config fields (dotted, e.g. optim_w.lr) that may differ from the "
    "config saved in the workdir when resuming; the change is recorded in its config.json.")
VERBOSE = flags.DEFINE_bool("verbose", False, "Show the Python traceback of an error.")

# Raised by jaxnas's own checks; anything else is a bug and keeps its traceback.
EXPECTED = (ValueError, OSError, FloatingPointError, WorkdirBusyError, ArchNotFoundError,
            distributed.OtherProcessError)


def _verbose(argv) -> bool:
    return "--verbose" in argv or os.environ.get("JAXNAS_VERBOSE", "") not in ("", "0")


def _fail(message: str, status: int, several: bool = False):
    print(f"error: {message}", file=sys.stderr)
    _exit(status, several)


def _exit(status: int, several: bool):
    """Exits with ``status``; a process of a multi-process run (``several``) leaves at once: a
    normal exit would wait at jax.distributed's shutdown for processes waiting for this one."""
    if several:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
    sys.exit(status)


def _define_process_flags() -> None:
    """Defines the flags of a multi-process run (module docstring), once."""
    if "distributed" in flags.FLAGS:
        return
    flags.DEFINE_enum(
        "distributed", "auto", ["auto", "off"], "auto: run on several processes when "
        "--coordinator_address, --num_processes or --process_id is given, or when JAX detects a "
        "cluster job of several processes (SLURM srun, Open MPI mpirun, a TPU pod slice); off: "
        "this process is a run of its own.")
    flags.DEFINE_string(
        "coordinator_address", None, "host:port where process 0 of a multi-process run listens "
        "(the same on every process); not needed where the cluster is detected.")
    flags.DEFINE_integer("num_processes", None, "Processes in a multi-process run.")
    flags.DEFINE_integer("process_id", None, "This process's number, 0 to --num_processes - 1 "
                         "(0 runs the coordinator).")
    flags.DEFINE_integer("distributed_timeout", distributed.DEFAULT_TIMEOUT, "Seconds every "
                         "process of a multi-process run has to reach the coordinator.")


COMPILATION_CACHE_BYTES = 8 << 30  # unless JAX_COMPILATION_CACHE_MAX_SIZE says otherwise


def compilation_cache_dir(value: str | None, environ) -> str | None:
    """The persistent compilation cache's directory for ``--compilation_cache=value`` (None: not
    given) in the environment ``environ``; None when it is turned off."""
    if value is not None:
        return os.path.expanduser(value) or None
    if environ.get("JAX_COMPILATION_CACHE_DIR"):
        return environ["JAX_COMPILATION_CACHE_DIR"]
    base = environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "jaxnas", "compilation")


def _define_cache_flag() -> None:
    """Defines ``--compilation_cache`` (module docstring), once."""
    if "compilation_cache" not in flags.FLAGS:
        flags.DEFINE_string(
            "compilation_cache", None, "Directory where compiled programs are kept, so that a "
            "resumed or repeated run skips compiling them (default: $JAX_COMPILATION_CACHE_DIR, "
            "else ~/.cache/jaxnas/compilation); '' turns it off.")


def _use_compilation_cache() -> None:
    """Points JAX's persistent compilation cache at ``--compilation_cache``'s directory."""
    path = compilation_cache_dir(flags.FLAGS.compilation_cache, os.environ)
    if path is not None and "://" not in path:  # a local directory (gs://... is made by JAX)
        try:
            os.makedirs(path, exist_ok=True)
        except OSError as e:
            _fail(f"--compilation_cache={path}: cannot use it as a directory ({e.strerror}); "
                  "give another directory, or --compilation_cache= to compile without a cache.",
                  2)
    jax.config.update("jax_compilation_cache_dir", path)
    if "JAX_COMPILATION_CACHE_MAX_SIZE" not in os.environ:
        jax.config.update("jax_compilation_cache_max_size", COMPILATION_CACHE_BYTES)


def _start_processes() -> bool:
    """Starts a multi-process run as the flags say (module docstring); whether it did."""
    values = flags.FLAGS
    given = [f"--{name}" for name in ("coordinator_address", "num_processes", "process_id")
             if values[name].value is not None]
    if values.distributed == "off":
        if given:
            _fail(f"--distributed=off runs one process alone; leave out {', '.join(given)}.", 2)
        return False
    try:
        return distributed.start(values.coordinator_address, values.num_processes,
                                 values.process_id, values.distributed_timeout)
    except ValueError as e:
        _fail(str(e), 2)


def _config_fields(argv) -> tuple[str, list[str]] | None:
    """``(path, dotted field names)`` of the ``--config=PATH[:ARG]`` in ``argv``, if it loads."""
    spec = next((a.split("=", 1)[1] for a in argv if a.startswith("--config=")), None)
    if spec is None:
        return None
    path, _, arg = spec.partition(":")
    try:
        get_config = runpy.run_path(path)["get_config"]
        config = get_config(arg) if arg else get_config()
    except Exception:  # noqa: BLE001 -- the flag parser reports what is wrong with the file
        return None

    def names(node, prefix):
        for key, value in node.items():
            if hasattr(value, "items"):
                yield from names(value, f"{prefix}{key}.")
            else:
                yield f"{prefix}{key}"

    return path, list(names(config, ""))


def _flag_error(error: Exception, argv) -> str:
    """A one-paragraph description of what was wrong with the flags or the config."""
    text = str(error).strip()
    loaded = _config_fields(argv)
    if loaded is not None:
        path, fields = loaded
        for arg in argv:
            if not arg.startswith("--config."):
                continue
            name = arg[len("--config."):].split("=", 1)[0]
            if name not in fields and not any(f.startswith(f"{name}.") for f in fields):
                close = difflib.get_close_matches(name, fields, n=5, cutoff=0.5)
                hint = (f" The closest fields: {', '.join(close)}." if close else
                        f" Its fields: {', '.join(fields)}.")
                return f"{arg}: {path} has no config field {name!r}.{hint}"
    lines = [line for line in text.splitlines() if line.strip()]
    if "Error whilst parsing config file" in text:  # the config's own error ends the traceback
        return f"{lines[0].split(':', 1)[0]}: {lines[-1]}"
    return lines[0] + (" (see --help)" if isinstance(error, flags.Error) else "")


def _parse(argv):
    for arg in argv:  # ml_collections reads the config file lazily; check it exists first
        if arg.startswith("--config="):
            path = arg.split("=", 1)[1].partition(":")[0]
            if not os.path.isfile(path):
                _fail(f"--config: there is no config file {path!r}.", 2)
    try:
        return flags.FLAGS(argv)
    except Exception as e:  # noqa: BLE001 -- absl and ml_collections raise many types here
        if _verbose(argv):
            raise
        _fail(_flag_error(e, argv), 2)


def define_config(default: str, help_text: str):
    """``config_flags.DEFINE_config_file("config", default, ...)`` for a script with a default
    config: ml_collections applies the ``--config.FIELD`` overrides to the default as the flag
    is defined, so a mistyped field is reported here, as one clear error."""
    try:
        return config_flags.DEFINE_config_file("config", default, help_text, lock_config=True)
    except Exception as e:  # noqa: BLE001 -- ml_collections raises many types here
        if _verbose(sys.argv):
            raise
        _fail(_flag_error(e, sys.argv + [f"--config={default}"]), 2)


def run(main, multi_process: bool = False, compilation_cache: bool = False):
    """``app.run(main)`` with the errors above; ``main(argv)`` is the script's body.
    ``multi_process``: the script can run on several processes, and takes the flags that start
    them; ``compilation_cache``: it keeps its compiled programs between runs (module docstring)."""
    if multi_process:
        _define_process_flags()
    if compilation_cache:
        _define_cache_flag()

    def guarded(argv):
        logging.set_verbosity(logging.WARNING)  # jaxnas logs progress itself; this hushes orbax
        if compilation_cache:
            _use_compilation_cache()
        several = _start_processes() if multi_process else False
        try:
            main(argv)
        except EXPECTED as e:
            if not _verbose(sys.argv):
                _fail(str(e.args[0]) if isinstance(e, KeyError) else str(e), 1, several)
            _leave_with_traceback(several)
            raise
        except Exception:
            _leave_with_traceback(several)
            raise

    app.run(guarded, flags_parser=_parse)


def _leave_with_traceback(several: bool):
    """In a multi-process run, prints the traceback of the error being handled and leaves at
    once (``_exit``); otherwise returns, and the error ends the process as usual."""
    if several:
        traceback.print_exc()
        _exit(1, several)
