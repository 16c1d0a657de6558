"""The experiment command's first step at full size: how long until it has run, and the memory.

    python -m experiments.bench_compile \
        --configs=darts_nb201,darts2_nb201,idarts_nb201,darts_cnn,idarts_cnn \
        --dataset=npz:../shared/data/cifar10_subset/cifar10_subset.npz

For each config it runs ``python -m experiments.search --config=experiments/configs/NAME.py``
as a user would, in a fresh process with an empty compilation cache and in a temporary workdir,
for one step (``--config.max_steps=1``; the config's sizes unchanged, only the data, the step
count and the fields ``--set`` names overridden); then, with ``--warm``, the same command again
in a new workdir, which loads the compiled programs from the cache the first run filled (as a
resumed or repeated run does). It prints a markdown table: the search loop's own time for that
step as the command logs it ("Search of 1 steps took", i.e. compiling the step and running it
once), the whole command's wall time (imports, data, initialization and the final genotype
included), and the process's peak resident memory. A run past ``--timeout`` seconds is stopped
and so marked; a run the kernel kills (out of memory) is marked too.
"""

import os
import platform
import re
import subprocess
import sys
import tempfile
import time

import jax
from absl import app, flags

from experiments.tables import markdown_table

_CONFIGS = flags.DEFINE_list("configs", ["darts_nb201", "darts2_nb201", "idarts_nb201",
                                         "darts_cnn", "idarts_cnn"],
                             "Config files in experiments/configs, without .py.")
_DATASET = flags.DEFINE_string("dataset", None, "config.dataset for every run (the data does "
                               "not change what is compiled, only its image shape does).")
_TIMEOUT = flags.DEFINE_integer("timeout", 1800, "Seconds after which a run is stopped.")
_SET = flags.DEFINE_list("set", [], "Config overrides FIELD=VALUE for every run (e.g. "
                         "space.scan=True), passed as --config.FIELD=VALUE.")
_WARM = flags.DEFINE_bool("warm", False, "Run each config a second time, its compiled "
                          "programs loaded from the compilation cache of the first run.")

_LOOP = re.compile(r"Search of 1 steps took (?:(\d+)h(\d+)m|(\d+)m(\d+)s|(\d+)s)")


def _loop_seconds(log: str) -> int | None:
    """The seconds of ``Search of 1 steps took ...`` in the command's log, or None."""
    match = _LOOP.search(log)
    if not match:
        return None
    h, hm, m, ms, s = (int(g) if g else 0 for g in match.groups())
    return 3600 * h + 60 * hm if match.group(1) else 60 * m + ms if match.group(3) else s


def _run(name: str, workdir: str, cache: str) -> tuple:
    """``(loop s or None, wall s, peak RSS MB, status)`` of one config's one-step search with the
    compilation cache ``cache``."""
    command = [sys.executable, "-m", "experiments.search",
               f"--config=experiments/configs/{name}.py", f"--workdir={workdir}",
               "--config.max_steps=1", "--config.log_every=1", f"--compilation_cache={cache}"]
    if _DATASET.value:
        command.append(f"--config.dataset={_DATASET.value}")
    command += [f"--config.{override}" for override in _SET.value]
    env = {k: v for k, v in os.environ.items() if not k.startswith("JAX_COMPILATION_CACHE")}
    with tempfile.TemporaryFile("w+") as log:
        start = time.perf_counter()
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
        deadline, timed_out = start + _TIMEOUT.value, False
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                process.kill()
                pid, status, usage = os.wait4(process.pid, 0)
                timed_out = True
                break
            time.sleep(0.5)
        wall = time.perf_counter() - start
        log.seek(0)
        text = log.read()
    code = os.waitstatus_to_exitcode(status)
    if timed_out:
        outcome = f"stopped after {_TIMEOUT.value} s"
    elif code == -9:
        outcome = "killed (SIGKILL: most likely out of memory)"
    else:
        outcome = "ok" if code == 0 else f"exit {code}: {text.strip().splitlines()[-1:]}"
    return _loop_seconds(text), wall, usage.ru_maxrss / 1024, outcome


def main(argv):
    del argv
    rows = []
    for name in _CONFIGS.value:
        with tempfile.TemporaryDirectory() as cache:
            for cached in ("cold", "warm") if _WARM.value else ("cold",):
                with tempfile.TemporaryDirectory() as workdir:
                    row = _run(name, workdir, cache)
                print(f"  {name} ({cached}): {row}", flush=True)
                rows.append((name, cached, *row))
    print(f"\nOne search step per config; {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cores, jax {jax.__version__}\n")
    print(markdown_table(
        ["config", "compilation cache", "first step, compiling included (s)",
         "whole command (s)", "peak RSS (MB)", "outcome"],
        [[name, cached, loop if loop is not None else "n/a", f"{wall:.0f}", f"{rss:.0f}",
          outcome] for name, cached, loop, wall, rss, outcome in rows]))


if __name__ == "__main__":
    app.run(main)
