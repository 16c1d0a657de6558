"""What a run does with its workdir when things go wrong (issue: hardening): damaged
checkpoints are detected and set aside, a NaN run saves only finite states and names the first
bad step, a resume may change the fields it is allowed to, a refused start writes nothing, one
run owns a workdir at a time, a torn metrics line is repaired, the command line reports
errors without tracebacks, and it finds the compilation cache's directory (its use end to end is
test_search.py::test_the_search_command_line)."""

import json
import os
import pathlib
import re
import shutil

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import orbax.checkpoint as ocp
import pytest

from jaxnas.engine import search
from jaxnas.engine.checkpoints import DIGESTS, Checkpoints, nonfinite_leaves
from jaxnas.engine.workdir import WorkdirBusyError, claim_workdir, locked



def _flip_a_byte(step_dir: pathlib.Path) -> pathlib.Path:
    """Flips one byte in the middle of the largest data file of an orbax checkpoint."""
    files = [p for p in step_dir.rglob("*") if p.is_file() and p.parent.name == "d"]
    target = max(files, key=lambda p: p.stat().st_size)
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0xFF
    target.write_bytes(bytes(data))
    return target


def test_a_damaged_checkpoint_is_set_aside_and_the_run_resumes_exactly(tmp_path, tiny_config,
                                                                       caplog):
    config = tiny_config(epochs=1, max_steps=20, checkpoint_every=5)
    full = search(config, str(tmp_path / "full"))
    part = tmp_path / "part"
    search(tiny_config(epochs=1, max_steps=15, checkpoint_every=5), str(part))
    _flip_a_byte(part / "checkpoints" / "15")
    with caplog.at_level("WARNING", logger="jaxnas"):
        resumed = search(config, str(part))
    assert "Checkpoint 15" in caplog.text
    assert os.listdir(part / "checkpoints_corrupt")[0].startswith("15-")
    jax.tree.map(np.testing.assert_array_equal, jax.device_get(full.state),
                 jax.device_get(resumed.state))


def test_a_checkpoint_that_does_not_match_its_digest_is_not_used(tmp_path, tiny_config, caplog):
    workdir = tmp_path / "run"
    search(tiny_config(epochs=1, max_steps=10, checkpoint_every=5), str(workdir))
    digests = json.loads((workdir / DIGESTS).read_text())
    assert sorted(digests) == ["10", "5"]
    digests["10"] = "0" * 64  # as if the values on disk no longer were those saved
    (workdir / DIGESTS).write_text(json.dumps(digests))
    from jaxnas.engine import build

    template = build(tiny_config()).initial_state()
    with caplog.at_level("WARNING", logger="jaxnas"):
        state = Checkpoints(str(workdir)).restore_latest(template)
    assert int(state.step) == 5
    assert "do not match the digest" in caplog.text


def test_the_first_nonfinite_step_is_recorded_once_from_any_leaf_or_metric():
    from flax import struct

    from jaxnas.engine.loop import first_nonfinite_step

    @struct.dataclass
    class State:
        step: jnp.ndarray
        nonfinite_step: jnp.ndarray
        params: dict

    params = {"a": jnp.ones((2, 3)), "b": jnp.zeros(4, jnp.bfloat16), "n": jnp.arange(3)}
    old = State(jnp.int32(6), jnp.int32(-1), params)
    check = jax.jit(first_nonfinite_step)
    assert int(check(old, old, {"loss": jnp.float32(0.5)})) == -1
    for bad in (jnp.nan, jnp.inf, -jnp.inf):
        for leaf in ("a", "b"):
            new = old.replace(params={**params, leaf: params[leaf].at[1].set(bad)})
            assert int(check(old, new, {"loss": jnp.float32(0.5)})) == 7, (bad, leaf)
        assert int(check(old, old, {"loss": jnp.float32(bad)})) == 7
    # once recorded, the first bad step stays
    assert int(check(old.replace(nonfinite_step=jnp.int32(3)), old,
                     {"loss": jnp.float32(jnp.nan)})) == 3


def test_the_collector_is_paused_inside_and_its_setting_restored_after():
    import gc

    from jaxnas.engine.loop import collector_paused

    was = gc.isenabled()
    try:
        for enabled in (True, False):
            (gc.enable if enabled else gc.disable)()
            with collector_paused():
                assert not gc.isenabled()
            assert gc.isenabled() == enabled
            with pytest.raises(KeyError), collector_paused():
                raise KeyError("in the step")
            assert gc.isenabled() == enabled
    finally:
        (gc.enable if was else gc.disable)()


def test_the_search_steps_run_with_the_collector_paused(tmp_path, tiny_config, monkeypatch):
    import gc

    from jaxnas.engine import search_loop

    make_step, seen = search_loop.make_step, []

    def recording(*args):
        step = make_step(*args)
        return lambda state, batches: (seen.append(gc.isenabled()), step(state, batches))[1]

    monkeypatch.setattr(search_loop, "make_step", recording)
    search(tiny_config(max_steps=2), str(tmp_path / "run"))
    assert seen == [False, False] and gc.isenabled()


def test_a_nan_run_saves_only_finite_states_and_names_the_first_bad_step(tmp_path, tiny_config,
                                                                         caplog):
    from jaxnas.engine import build

    workdir = tmp_path / "run"
    config = tiny_config(**{"optim_w.lr": 1e30, "optim_w.lr_min": 0.0, "optim_w.grad_clip": 0.0,
                            "log_every": 1, "checkpoint_every": 1})
    with caplog.at_level("INFO", logger="jaxnas"), \
            pytest.raises(FloatingPointError, match=r"NaN or infinite at step \d+") as error:
        search(config, str(workdir))
    bad = int(re.search(r"at step (\d+)", str(error.value)).group(1))
    saved = sorted(int(s) for s in os.listdir(workdir / "checkpoints"))
    assert saved == list(range(1, bad))  # every step before the bad one, and none after
    template = build(config).initial_state()
    checkpoints = Checkpoints(str(workdir))
    for step in saved:
        state = checkpoints.manager.restore(step, args=ocp.args.StandardRestore(template))
        assert nonfinite_leaves(state) == []
    assert f"last good checkpoint (step {bad - 1})" in str(error.value)
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("step ")]
    assert lines and lines[-1].startswith(f"step {bad - 1}/")  # the progress line's count


def test_resuming_with_an_allowed_change_records_it(tmp_path, tiny_config):
    workdir = str(tmp_path / "run")
    search(tiny_config(max_steps=5), workdir)
    with pytest.raises(ValueError, match=r"--allow_config_change=optim_w\.lr"):
        search(tiny_config(max_steps=10, **{"optim_w.lr": 0.01}), workdir)
    with pytest.raises(ValueError, match="space.C cannot change in a run"):
        search(tiny_config(max_steps=10, **{"space.C": 8}), workdir, allow_changes=["space"])
    with pytest.raises(ValueError, match=r"names \['optim_w.lrr'\], which are not config"):
        search(tiny_config(max_steps=10), workdir, allow_changes=["optim_w.lrr"])
    result = search(tiny_config(max_steps=10, **{"optim_w.lr": 0.01}), workdir,
                    allow_changes=["optim_w.lr"])
    assert result.steps == 10
    saved = json.load(open(os.path.join(workdir, "config.json")))
    assert saved["optim_w"]["lr"] == 0.01
    assert saved["history"][0]["changed"] == {"optim_w.lr": [0.025, 0.01]}
    # The recorded config is the one a plain rerun must now match.
    assert search(tiny_config(max_steps=10, **{"optim_w.lr": 0.01}), workdir).steps == 10


def test_how_the_step_compiles_may_change_on_resume(tmp_path):
    # space.scan and space.remat change how the step is compiled, not what it computes: a run
    # saved with scan=False (the default before it became None) resumes with any of them.
    saved = ml_collections.ConfigDict({"space": {"name": "nb201", "C": 4, "scan": False,
                                                 "remat": False}})
    claim_workdir(str(tmp_path), saved)
    for scan, remat in ((None, False), (True, True)):
        claim_workdir(str(tmp_path), ml_collections.ConfigDict(
            {"space": {"name": "nb201", "C": 4, "scan": scan, "remat": remat}}))
    assert json.load(open(tmp_path / "config.json"))["space"]["scan"] is False
    with pytest.raises(ValueError, match="space.C cannot change in a run"):
        claim_workdir(str(tmp_path), ml_collections.ConfigDict(
            {"space": {"name": "nb201", "C": 8, "scan": False, "remat": False}}))


def test_how_the_hypergradient_products_are_formed_may_change_on_resume(tmp_path):
    # strategy.linearize and strategy.neumann_loop (strategy.hypergradient.linearize and .loop)
    # choose between one linearization and a jvp per product, and between unrolled and looped
    # products, the same values: a run saved before the fields existed, or with the other
    # values, resumes; the strategy's other fields still may not change.
    claim_workdir(str(tmp_path), ml_collections.ConfigDict(
        {"strategy": {"name": "idarts", "neumann_terms": 2}}))
    for linearize, loop in ((True, False), (False, True)):
        claim_workdir(str(tmp_path), ml_collections.ConfigDict(
            {"strategy": {"name": "idarts", "neumann_terms": 2, "linearize": linearize,
                          "neumann_loop": loop}}))
    claim_workdir(str(tmp_path / "any"), ml_collections.ConfigDict(
        {"strategy": {"name": "constrained", "hypergradient": {"name": "neumann"}}}))
    claim_workdir(str(tmp_path / "any"), ml_collections.ConfigDict(
        {"strategy": {"name": "constrained",
                      "hypergradient": {"name": "neumann", "linearize": True, "loop": True}}}))
    with pytest.raises(ValueError, match="strategy.neumann_terms cannot change in a run"):
        claim_workdir(str(tmp_path), ml_collections.ConfigDict(
            {"strategy": {"name": "idarts", "neumann_terms": 3, "linearize": True}}))


@pytest.mark.parametrize("override,match", [
    ({"optim_w.lr": -1.0}, "config.optim_w.lr must be a positive number"),
    ({"dataset": "npz:/nonexistent.npz"}, "No npz dataset"),
    ({"nb201_table": "/nonexistent.csv"}, "nonexistent.csv"),
])
def test_a_refused_start_writes_nothing(tmp_path, tiny_config, override, match):
    workdir = tmp_path / "new"
    with pytest.raises((ValueError, FileNotFoundError), match=match):
        search(tiny_config(**override), str(workdir))
    assert not workdir.exists()


def test_one_run_per_workdir(tmp_path, tiny_config, caplog):
    workdir = tmp_path / "run"
    with locked(str(workdir)):
        owner = (workdir / ".lock").read_text()
        assert f"pid {os.getpid()}" in owner
        with pytest.raises(WorkdirBusyError, match=f"in use by pid {os.getpid()}"):
            search(tiny_config(max_steps=2), str(workdir))
    assert not (workdir / ".lock").exists()  # released, and removed
    assert not (workdir / "config.json").exists()
    # A lock file left by a killed run (no process holds the lock) is taken over.
    (workdir / ".lock").write_text("pid 999999 on elsewhere since 2026-01-01T00:00:00\n")
    with caplog.at_level("INFO", logger="jaxnas"):
        assert search(tiny_config(max_steps=2), str(workdir)).steps == 2
    assert "Took over the lock of an ended run (pid 999999" in caplog.text


def test_a_torn_metrics_line_is_repaired_on_resume(tmp_path, tiny_config, caplog):
    workdir = tmp_path / "run"
    search(tiny_config(max_steps=10, log_every=2, checkpoint_every=5), str(workdir))
    # A crash while writing step 10's line, before its checkpoint was committed.
    shutil.rmtree(workdir / "checkpoints" / "10")
    path = workdir / "metrics.jsonl"
    text = path.read_text()
    path.write_text(text[:-40])
    with caplog.at_level("WARNING", logger="jaxnas"):
        search(tiny_config(max_steps=14, log_every=2, checkpoint_every=5), str(workdir))
    assert "cut short" in caplog.text
    steps = [json.loads(line)["step"] for line in path.read_text().splitlines()]
    assert steps == [2, 4, 6, 8, 10, 12, 14]
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:2] + ["{not json"] + lines[2:]) + "\n")
    with pytest.raises(ValueError, match="Line 3 of .*metrics.jsonl.* is not JSON"):
        search(tiny_config(max_steps=16, log_every=2, checkpoint_every=5), str(workdir))


def test_a_damaged_config_json_is_named(tmp_path, tiny_config):
    workdir = tmp_path / "run"
    workdir.mkdir()
    (workdir / "config.json").write_text('{"seed": 0, ')
    with pytest.raises(ValueError, match=r"config file .*config.json' is damaged"):
        search(tiny_config(max_steps=2), str(workdir))


@pytest.fixture
def command_line(run_script):
    """``run(*args) -> (exit status, stderr)``: ``python -m experiments.search ARGS`` in this
    process (the real command line is ``test_search.py::test_the_search_command_line``)."""
    def run(*args):
        status, _, err = run_script("search", *args)
        return status, err

    return run


@pytest.mark.parametrize("args,status,message", [
    (["--config.batchsize=8"], 2, "has no config field 'batchsize'. The closest fields: "
                                  "batch_size"),
    (["--config.strategy.nme=x"], 2, "The closest fields: strategy.name"),
    (["--config.batch_size=abc"], 2, "invalid literal for int()"),
    (["--workdir="], 1, "--workdir is empty"),
    (["--workdir=/etc/hostname"], 1, "is a file; give a directory"),
    (["--config.optim_w.lr=-1"], 1, "config.optim_w.lr must be a positive number"),
])
def test_the_command_line_reports_errors_without_a_traceback(command_line, tmp_path, args,
                                                             status, message):
    base = ["--config=experiments/configs/quickstart.py", f"--workdir={tmp_path / 'run'}"]
    code, stderr = command_line(*base, *args)
    assert code == status, stderr[-2000:]
    assert message in stderr and "Traceback" not in stderr
    assert stderr.strip().splitlines()[-1].startswith("error: ")


def test_the_command_line_errors_for_the_config_file_and_verbose(command_line, tmp_path,
                                                                monkeypatch):
    from experiments import cli

    code, stderr = command_line("--config=experiments/configs/nope.py", f"--workdir={tmp_path}")
    assert code == 2 and "there is no config file 'experiments/configs/nope.py'" in stderr
    code, stderr = command_line("--config=experiments/configs/constrained_cnn.py:foo",
                                f"--workdir={tmp_path}")
    assert code == 2 and "Unknown constrained_cnn variant 'foo'" in stderr
    assert "Traceback" not in stderr
    # Verbose: the error is raised with its traceback instead of ending in "error: ...".
    for extra, env in ((["--verbose"], None), ([], {"JAXNAS_VERBOSE": "1"})):
        for name, value in (env or {}).items():
            monkeypatch.setenv(name, value)
        with pytest.raises(cli.EXPECTED, match="--workdir is empty"):
            command_line("--config=experiments/configs/quickstart.py", "--workdir=", *extra)
        for name in env or {}:
            monkeypatch.delenv(name)


def test_the_compilation_cache_directory():
    from experiments.cli import compilation_cache_dir

    home = os.path.expanduser("~")
    assert compilation_cache_dir(None, {}) == os.path.join(home, ".cache", "jaxnas", "compilation")
    assert compilation_cache_dir(None, {"XDG_CACHE_HOME": "/x"}) == "/x/jaxnas/compilation"
    jax_dir = {"JAX_COMPILATION_CACHE_DIR": "/j", "XDG_CACHE_HOME": "/x"}
    assert compilation_cache_dir(None, jax_dir) == "/j"
    assert compilation_cache_dir("~/c", jax_dir) == os.path.join(home, "c")
    assert compilation_cache_dir("", jax_dir) is None


def test_a_compilation_cache_that_is_not_a_directory_is_refused(run_script, tmp_path):
    cache = tmp_path / "cache"
    cache.write_text("not a directory")
    status, _, stderr = run_script(
        "search", "--config=experiments/configs/quickstart.py", f"--workdir={tmp_path / 'run'}",
        f"--compilation_cache={cache}", compilation_cache=True)
    assert status == 2 and "Traceback" not in stderr
    assert f"--compilation_cache={cache}: cannot use it as a directory" in stderr
    assert not (tmp_path / "run").exists() and cache.read_text() == "not a directory"
