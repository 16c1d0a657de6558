"""Searches and retraining on several processes (``jaxnas.distributed``): two processes of two
CPU devices each, started on this machine with the experiment command's flags, against one
process of four; a resume on another process count; a workdir the processes do not share."""

import json
import os
import shutil
import socket
import subprocess
import sys
import textwrap
import time
import types

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest
from arrayrecords import write_mini

from jaxnas import distributed
from jaxnas.data import data_mesh, local_rows
from jaxnas.engine import load_search

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
QUICKSTART = os.path.join(REPO, "experiments", "configs", "quickstart.py")
# The quickstart shrunk as conftest's tiny_config: 6 steps, checkpoints at 3 and 6.
SEARCH_FLAGS = [f"--config={QUICKSTART}", "--config.space.C=4", "--config.batch_size=16",
                "--config.optim_alpha.lr=3e-3", "--config.log_every=3",
                "--config.checkpoint_every=3"]
SEARCH = ("experiments.search", *SEARCH_FLAGS)
NB201_ARCH = ("|nor_conv_3x3~0|+|skip_connect~0|nor_conv_1x1~1|+|skip_connect~0|none~1|"
              "avg_pool_3x3~2|")
STEPS = 6
RUN_TIMEOUT = 600  # seconds per search: a hung process fails the test instead of blocking CI

# Runs the module sys.argv[3] (experiments.search, experiments.train) with the arguments after it,
# recording in the JSON file sys.argv[2] what the process changes in the workdir sys.argv[1]
# (Python's audit events: files opened for writing, renames, new folders, removals), relative to
# it.
_DRIVER = textwrap.dedent("""
    import atexit, json, os, runpy, sys
    workdir, record = os.path.realpath(sys.argv[1]), sys.argv[2]
    changed = set()

    def audit(event, args):
        if event == "open":
            if not args[2] & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
                return
        elif event not in ("os.rename", "os.mkdir", "os.remove", "os.rmdir"):
            return
        for path in args[:2] if event == "os.rename" else args[:1]:
            if isinstance(path, (str, bytes, os.PathLike)):
                path = os.path.realpath(os.fsdecode(path))
                if path == workdir or path.startswith(workdir + os.sep):
                    changed.add(os.path.relpath(path, workdir))

    def save():
        with open(record, "w") as f:
            json.dump(sorted(changed), f)

    atexit.register(save)
    sys.addaudithook(audit)
    module = sys.argv[3]
    sys.argv = [module] + sys.argv[4:]
    runpy.run_module(module, run_name="__main__", alter_sys=True)
""")


def _env(devices: int) -> dict:
    return {**os.environ, "JAX_PLATFORMS": "cpu", "XLA_FLAGS": os.environ.get("XLA_FLAGS", "")
            + f" --xla_force_host_platform_device_count={devices}"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def _launch(tmp_path, workdir, name: str, args: list, devices: int, command: tuple) -> tuple:
    """Starts one process of ``command`` (a module and its flags; ``name`` labels its files) and
    returns ``(process, record path, stderr path)``."""
    record, err = tmp_path / f"{name}.changed.json", tmp_path / f"{name}.stderr"
    with open(err, "w") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-c", _DRIVER, str(workdir), str(record), *command,
             f"--workdir={workdir}", *args], cwd=REPO, env=_env(devices),
            stdout=subprocess.DEVNULL, stderr=stderr)
    return process, record, err


def _search(tmp_path, workdir, name: str, processes: int, max_steps: int, command=SEARCH,
            check: bool = True) -> list[dict]:
    """Runs ``command`` (the search) in ``workdir`` (or each process in its own, given a list)
    on ``processes`` processes (4 CPU devices in all) up to ``max_steps`` and returns, per
    process, what it changed in the workdir, its stderr and its exit status; fails the test if
    a process fails and ``check``."""
    args = [f"--config.max_steps={max_steps}"]
    if processes > 1:
        args += [f"--coordinator_address=localhost:{_free_port()}",
                 f"--num_processes={processes}", "--distributed_timeout=120"]
    workdirs = workdir if isinstance(workdir, list) else [workdir] * processes
    launched = [_launch(tmp_path, workdirs[i], f"{name}.{i}",
                        args + ([f"--process_id={i}"] if processes > 1 else []), 4 // processes,
                        command)
                for i in range(processes)]
    deadline, failed = time.monotonic() + RUN_TIMEOUT, []
    for process, _, _ in launched:
        try:
            if process.wait(timeout=max(1.0, deadline - time.monotonic())):
                failed.append(process)
        except subprocess.TimeoutExpired:
            failed.append(process)
    for process, _, _ in launched:
        if process.poll() is None:
            process.kill()
            process.wait()
    runs = [{"changed": json.loads(record.read_text()) if record.exists() else None,
             "stderr": err.read_text(), "status": process.returncode}
            for process, record, err in launched]
    if failed and check:
        logs = "\n".join(f"--- process {i} (exit {p.returncode}):\n{run['stderr'][-3000:]}"
                         for i, ((p, _, _), run) in enumerate(zip(launched, runs)))
        pytest.fail(f"the {name} search failed or hung:\n{logs}")
    return runs


def _final(workdir):
    """The final state's weights, batch-norm statistics and architecture, as host arrays."""
    state = jax.device_get(load_search(str(workdir))[1])
    leaves = jax.tree_util.tree_flatten_with_path((state.params, state.batch_stats,
                                                   state.arch.alpha))[0]
    return {jax.tree_util.keystr(path): np.asarray(leaf) for path, leaf in leaves}


def _records(workdir) -> dict:
    with open(workdir / "metrics.jsonl") as f:
        return {r["step"]: r for r in map(json.loads, f)}


def _assert_same_search(one, two):
    """The final weights, batch statistics, architecture and genotype of the searches in the
    workdirs ``one`` and ``two`` agree (to float32 rounding: processes sum gradients with gloo,
    in another order)."""
    expected, got = _final(one), _final(two)
    assert expected.keys() == got.keys() and len(expected) > 100
    for key in expected:
        np.testing.assert_allclose(got[key], expected[key], rtol=0, atol=1e-6, err_msg=key)
    with open(one / "genotype.json") as f, open(two / "genotype.json") as g:
        assert json.load(g)["arch_str"] == json.load(f)["arch_str"]


@pytest.mark.slow
def test_two_processes_search_as_one_process_on_four_devices_and_resume_on_either_count(
        tmp_path):
    """The quickstart, shrunk, in one process of 4 CPU devices, and in 2 processes of 2 stopped
    after the checkpoint of step 3, then resumed from a copy of that workdir each way: by the
    same command (2 processes), and by 1 process of 4 (process count 2 -> 1; the batch of 16
    divides both). Both end with the weights, architecture, metrics and genotype of the one
    process throughout, and process 1 wrote nothing but its part of the checkpoints. (One test,
    so that the reference run and the stopped run are not repeated.)"""
    one, two, other = tmp_path / "one", tmp_path / "two", tmp_path / "other"
    _search(tmp_path, one, "one", processes=1, max_steps=STEPS)
    first = _search(tmp_path, two, "first", processes=2, max_steps=3)
    shutil.copytree(two, other)
    resumed = _search(tmp_path, two, "resumed", processes=2, max_steps=STEPS)
    _search(tmp_path, other, "resumed_on_one", processes=1, max_steps=STEPS)

    _assert_same_search(one, two)
    _assert_same_search(one, other)
    want, have = _records(one), _records(two)
    assert sorted(have) == sorted(want) == [3, STEPS]  # step 3 from the first launch
    for step, record in want.items():
        assert have[step]["genotype"] == record["genotype"], step
        np.testing.assert_allclose(have[step]["train_loss"], record["train_loss"], rtol=1e-5)
        np.testing.assert_allclose(have[step]["arch_weights"]["cell"],
                                   record["arch_weights"]["cell"], rtol=0, atol=1e-6)

    assert "config.json" in first[0]["changed"]
    for (chief, other_process), last in ((first, 3), (resumed, STEPS)):
        assert {"metrics.jsonl", "genotype.json", "checkpoint_digests.json"} \
            <= set(chief["changed"])
        assert [p for p in other_process["changed"] if not p.startswith("checkpoints")] == []
        assert f"step {last}/{last}" in chief["stderr"] and "jaxnas]" not in other_process["stderr"]
    assert len([f for f in os.listdir(two) if f.startswith("events.out.tfevents")]) == 2


def _retrain(records) -> tuple:
    """experiments.train of an NB201 cell (C=4, N=1) streamed from the ArrayRecord directory
    ``records`` (40 images: 5 steps of 8 an epoch), logging every step, checkpoints every 3."""
    return ("experiments.train", f"--genotype={NB201_ARCH}",
            f"--config={os.path.join(REPO, 'experiments', 'configs', 'train_nb201.py')}",
            f"--config.dataset=arrayrecord:{records}", "--config.data_pipeline=grain",
            "--config.space.C=4", "--config.space.N=1", "--config.batch_size=8",
            "--config.epochs=2", "--config.log_every=1", "--config.checkpoint_every=3",
            "--config.eval_every=0", "--config.data_threads=2")


def _checkpoint(workdir, step: int) -> dict:
    """The state saved at ``step`` (but its wall time), as host arrays by path (on this
    process's one device, whatever the devices that saved it)."""
    path, checkpointer = str(workdir / "checkpoints" / str(step) / "default"), \
        ocp.PyTreeCheckpointer()
    as_numpy = jax.tree.map(lambda _: ocp.RestoreArgs(restore_type=np.ndarray),
                            checkpointer.metadata(path).item_metadata.tree)
    tree = checkpointer.restore(path, restore_args=as_numpy)
    leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
    return {jax.tree_util.keystr(path): np.asarray(leaf) for path, leaf in leaves
            if "seconds" not in jax.tree_util.keystr(path)}


def _train_losses(workdir) -> dict:
    with open(workdir / "metrics.jsonl") as f:
        return {r["step"]: r["train_loss"] for r in map(json.loads, f) if "train_loss" in r}


@pytest.mark.slow
def test_two_processes_retrain_as_one_and_a_checkpoint_resumes_on_another_count(tmp_path):
    """Streamed retraining: 2 processes of 2 devices stopped at the checkpoint of step 3 hold the
    state that 1 process of 4 holds there, and 1 process of 4 resuming from it (process count 2
    -> 1; the batch of 8 divides both) ends at step 6 (into the second epoch) as the 1-process
    run does: the same weights, batch statistics and optimizer state (to float32 rounding, 1e-5:
    gloo sums the gradients in another order; a batch read wrong moves them by ~0.1), losses
    and loader position."""
    records = write_mini(tmp_path / "mini")
    one, two = tmp_path / "one", tmp_path / "two"
    _search(tmp_path, one, "one", processes=1, max_steps=STEPS, command=_retrain(records))
    _search(tmp_path, two, "two", processes=2, max_steps=3, command=_retrain(records))
    expected, got = _checkpoint(one, 3), _checkpoint(two, 3)
    assert expected.keys() == got.keys() and len(expected) > 20
    for key in expected:
        np.testing.assert_allclose(got[key], expected[key], rtol=1e-5, atol=1e-5, err_msg=key)
    data = json.loads((two / "checkpoints" / "3" / "data" / "metadata").read_text())
    assert data == {"next_index": 3}
    _search(tmp_path, two, "resumed", processes=1, max_steps=STEPS, command=_retrain(records))
    expected, got = _checkpoint(one, STEPS), _checkpoint(two, STEPS)
    for key in expected:
        np.testing.assert_allclose(got[key], expected[key], rtol=1e-5, atol=1e-5, err_msg=key)
    want, have = _train_losses(one), _train_losses(two)
    assert sorted(have) == sorted(want) == list(range(1, STEPS + 1))
    for step in want:
        np.testing.assert_allclose(have[step], want[step], rtol=1e-5, err_msg=step)
    with open(one / "report.json") as f, open(two / "report.json") as g:
        np.testing.assert_allclose(json.load(g)["test_loss"], json.load(f)["test_loss"],
                                   rtol=1e-5)


@pytest.mark.slow
def test_a_workdir_the_processes_do_not_share_is_a_clear_error(tmp_path):
    """Process 1 given another directory than process 0 (as on a host that does not mount
    process 0's): both stop with one error that names the cause, and no checkpoint is written."""
    mine, theirs = tmp_path / "shared", tmp_path / "elsewhere"
    runs = _search(tmp_path, [mine, theirs], "split", processes=2, max_steps=3, check=False)
    for run, workdir in zip(runs, (mine, theirs)):
        assert run["status"] == 1, run["stderr"][-3000:]
        assert f"error: The workdir '{workdir}' is not shared: process 1 cannot see the file " \
               ".lock that process 0 wrote in it." in run["stderr"], run["stderr"][-3000:]
        assert "Traceback" not in run["stderr"]
    assert not (mine / "checkpoints").exists() and not theirs.exists()


@pytest.mark.slow
def test_an_unreachable_coordinator_is_a_clear_error(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "experiments.search", *SEARCH_FLAGS, f"--workdir={tmp_path}",
         f"--coordinator_address=localhost:{_free_port()}", "--num_processes=2",
         "--process_id=1", "--distributed_timeout=3"],
        cwd=REPO, env=_env(2), capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stderr[-3000:]
    assert done.stderr.startswith("error: could not reach the coordinator at localhost:"), \
        done.stderr[-3000:]
    assert "Traceback" not in done.stderr and os.listdir(tmp_path) == []


@pytest.mark.parametrize("args,message", [
    (["--distributed=off", "--process_id=1"], "--distributed=off runs one process alone; leave "
                                               "out --process_id."),
    (["--coordinator_address=localhost:1234"], "needs --coordinator_address, --num_processes "
                                               "and --process_id, all three"),
])
def test_the_command_line_refuses_incomplete_process_flags(run_script, tmp_path, args, message):
    status, _, stderr = run_script("search", *SEARCH_FLAGS, f"--workdir={tmp_path}", *args,
                                   multi_process=True)
    assert status == 2
    assert stderr.startswith("error: ") and message in stderr and "Traceback" not in stderr
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("kwargs,match", [
    ({"coordinator_address": "localhost:1234"}, "all three"),
    ({"coordinator_address": "localhost:1234", "num_processes": 2, "process_id": 2},
     "--process_id=2 is not one of 0 to 1"),
])
def test_start_refuses_incomplete_or_inconsistent_flags(kwargs, match):
    with pytest.raises(ValueError, match=match):
        distributed.start(**kwargs)


def test_a_plain_run_starts_no_distributed_system(monkeypatch):
    for name in list(os.environ):
        if name.startswith(("SLURM_", "OMPI_", "JAX_COORDINATOR")) or name == \
                "KUBERNETES_SERVICE_HOST":
            monkeypatch.delenv(name)
    assert distributed.cluster_processes() == 1
    assert distributed.start() is False


def test_each_process_loads_its_block_of_rows_in_order(monkeypatch):
    """Two processes of two devices each split a batch of 16 as one process of four devices
    would: process p loads rows 8p to 8p + 7."""
    devices = [types.SimpleNamespace(process_index=p) for p in (0, 0, 1, 1)]
    mesh = types.SimpleNamespace(devices=np.asarray(devices), size=4)
    rows = []
    for p in (0, 1):
        monkeypatch.setattr(jax, "process_index", lambda p=p: p)
        rows.append(local_rows(16, mesh))
    assert rows == [slice(0, 8), slice(8, 16)]
    mesh.devices = np.asarray([devices[i] for i in (0, 2, 1, 3)])
    with pytest.raises(ValueError, match="interleaves"):
        local_rows(16, mesh)


def test_one_process_loads_every_row_of_its_mesh_in_device_order():
    assert local_rows(16) == slice(0, 16)
    assert list(data_mesh().devices.flat) == jax.devices()
