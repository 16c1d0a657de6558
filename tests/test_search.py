"""The search engine end to end: workdir, resume, corrupt checkpoints, compile-once, data
parallelism, non-finite losses and config errors. Tiny NB201 supernet on the 8x8 digits."""

import json
import os
import re
import subprocess
import sys
import textwrap

import chex
import jax
import numpy as np
import pytest

from jaxnas.engine import search
from jaxnas.engine.search_loop import make_eigenvalue, make_step
from jaxnas import hypergrad as hg

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _flat(tree):
    leaves = jax.tree_util.tree_flatten_with_path(jax.device_get(tree))[0]
    return {jax.tree_util.keystr(path): np.asarray(leaf) for path, leaf in leaves}


def test_search_writes_the_workdir(tmp_path, tiny_config):
    workdir = str(tmp_path / "run")
    result = search(tiny_config(), workdir)
    steps = result.steps
    assert steps == 2 * (718 // 16)  # 2 epochs over the train half of the 1,437 digits
    assert int(result.state.step) == steps
    files = set(os.listdir(workdir))
    assert {"config.json", "checkpoints", "metrics.jsonl", "genotype.json", "genotype.png",
            "genotype.svg", "arch_weights.png"} <= files
    assert any(f.startswith("events.out.tfevents") for f in files)
    assert str(steps) in os.listdir(os.path.join(workdir, "checkpoints"))
    records = [json.loads(line) for line in open(os.path.join(workdir, "metrics.jsonl"))]
    assert [r["step"] for r in records] == list(range(5, steps, 5)) + [steps]
    assert all(np.isfinite(r["train_loss"]) and 0 <= r["val_accuracy"] <= 1 for r in records)
    assert np.array(records[-1]["arch_weights"]["cell"]).shape == (6, 5)
    # The genotype is the argmax of the final softmax(alpha), with its arch string.
    genotype = json.load(open(os.path.join(workdir, "genotype.json")))
    ops = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
    expected = [ops[i] for i in np.argmax(np.asarray(result.state.arch.alpha["cell"]), axis=-1)]
    assert genotype["ops"] == expected and genotype["arch_str"] == str(result.genotype)
    # Training did something: the last train loss is well below log(10).
    assert records[-1]["train_loss"] < 0.8 * np.log(10)


@pytest.mark.slow
def test_resume_after_interruption_equals_an_uninterrupted_run(tmp_path, tiny_config, caplog):
    config = tiny_config(epochs=1)
    full = search(config, str(tmp_path / "full"))
    part = str(tmp_path / "part")
    search(tiny_config(epochs=1, max_steps=13), part)  # checkpoints at 5, 10 and 13
    assert sorted(int(s) for s in os.listdir(os.path.join(part, "checkpoints"))) == [5, 10, 13]
    # Corrupt the newest checkpoint: the resume must skip it, keep it aside, and use step 10.
    newest = os.path.join(part, "checkpoints", "13")
    for root, _, names in os.walk(newest):
        for name in names:
            if name != "_CHECKPOINT_METADATA" and name != "commit_success.txt":
                with open(os.path.join(root, name), "wb") as f:
                    f.write(b"garbage")
    with caplog.at_level("WARNING", logger="jaxnas"):
        resumed = search(config, part)
    assert "Checkpoint 13" in caplog.text and "cannot be restored" in caplog.text
    corrupt = os.listdir(os.path.join(part, "checkpoints_corrupt"))
    assert len(corrupt) == 1 and corrupt[0].startswith("13-")
    assert int(resumed.state.step) == int(full.state.step)
    for name in ("arch", "params", "batch_stats"):
        a, b = _flat(getattr(full.state, name)), _flat(getattr(resumed.state, name))
        assert a.keys() == b.keys()
        for key in a:
            np.testing.assert_array_equal(a[key], b[key], err_msg=f"{name}/{key}")
    # metrics.jsonl holds each logged step once.
    steps = [json.loads(l)["step"] for l in open(os.path.join(part, "metrics.jsonl"))]
    assert steps == sorted(set(steps))


@pytest.mark.slow
def test_a_finished_run_rerun_changes_nothing_and_eigenvalues_are_logged(tmp_path, tiny_config):
    workdir = str(tmp_path / "run")
    # 40 iterations: the eigenvalue program of test_alpha_hessian_eigenvalue_matches_the_...
    config = tiny_config(epochs=1, eigenvalue_every=20, eigenvalue_iters=40)
    first = search(config, workdir)
    again = search(config, workdir)
    np.testing.assert_array_equal(first.state.arch.alpha["cell"], again.state.arch.alpha["cell"])
    records = [json.loads(line) for line in open(os.path.join(workdir, "metrics.jsonl"))]
    eigen = [(r["step"], r["alpha_hessian_eigenvalue"]) for r in records
             if "alpha_hessian_eigenvalue" in r]
    assert [step for step, _ in eigen] == [20, 40]
    assert all(np.isfinite(value) and value != 0 for _, value in eigen)


def test_the_step_compiles_once(tiny_config):
    from jaxnas.data import data_mesh, replicated, to_global
    from jaxnas.engine import build

    # The search's own setup, state and sharded batches: the program a search of tiny_config()
    # compiles (served from the persistent compilation cache when another test compiled it).
    setup = build(tiny_config())
    strategy = setup.strategy
    object.__setattr__(strategy, "step", chex.assert_max_traces(strategy.step, n=1))
    mesh = data_mesh()
    state = jax.device_put(setup.initial_state(), replicated(mesh))
    step = make_step(strategy, setup.problem, setup.per_step, mesh)
    rng = np.random.default_rng(0)
    for _ in range(3):
        batch = {"image": rng.integers(0, 255, (1, 16, 8, 8, 1), dtype=np.uint8),
                 "label": rng.integers(0, 10, (1, 16)).astype(np.int32)}
        state, metrics = step(state, to_global({"train": batch, "val": batch}, mesh, 1))
    assert int(state.step) == 3 and int(state.data_position["train"]) == 3


def test_alpha_hessian_eigenvalue_matches_the_dense_hessian(tiny_config):
    from jaxnas.data import data_mesh, replicated, to_global
    from jaxnas.engine import build

    # The setup, state and sharded val batch of a search of tiny_config() that logs the
    # eigenvalue with 40 iterations: the program test_a_finished_run_rerun_... compiles.
    config = tiny_config(eigenvalue_iters=40)
    setup = build(config)
    strategy, problem, mesh = setup.strategy, setup.problem, data_mesh()
    state = jax.device_put(setup.initial_state(), replicated(mesh))
    rng = np.random.default_rng(1)
    val = to_global({"image": rng.integers(0, 255, (1, 16, 8, 8, 1), dtype=np.uint8),
                     "label": rng.integers(0, 10, (1, 16)).astype(np.int32)}, mesh, 1)
    value = float(make_eigenvalue(strategy, problem, config)(state, val))
    # The dense 30 x 30 alpha-Hessian, column by column.
    loss, alpha = strategy.hessian_target(state, jax.tree.map(lambda x: x[0], val), problem)
    flat_loss = lambda a: loss({"cell": a.reshape(6, 5)})
    column = jax.jit(lambda v: hg.hvp(flat_loss, alpha["cell"].ravel(), v))
    dense = np.stack([np.asarray(column(e)) for e in np.eye(30, dtype=np.float32)])
    eigenvalues = np.linalg.eigvalsh((dense + dense.T) / 2)
    dominant = eigenvalues[np.argmax(np.abs(eigenvalues))]
    np.testing.assert_allclose(value, dominant, rtol=1e-2)


_PARALLEL_SCRIPT = textwrap.dedent("""
    import sys, numpy as np, jax
    sys.path.insert(0, {repo!r})
    from experiments.configs import quickstart
    from jaxnas.engine import search
    assert len(jax.devices()) == {devices}, jax.devices()
    c = quickstart.get_config()
    c.batch_size, c.epochs, c.max_steps, c.log_every, c.checkpoint_every = 16, 1, 6, 3, 3
    c.space.C = 4
    c.augment = True
    state = search(c, {workdir!r}).state
    leaves = jax.tree_util.tree_flatten_with_path((state.arch.alpha, state.params,
                                                   state.batch_stats))
    np.savez({out!r}, **{{jax.tree_util.keystr(path): np.asarray(leaf)
                         for path, leaf in leaves[0]}})
""")


def _cpu_devices(count):
    """The environment of a subprocess that sees ``count`` CPU devices."""
    return {**os.environ, "JAX_PLATFORMS": "cpu", "XLA_FLAGS": os.environ.get("XLA_FLAGS", "")
            + f" --xla_force_host_platform_device_count={count}"}


def _run_on_devices(devices, tmp_path):
    out = str(tmp_path / f"out{devices}.npz")
    script = _PARALLEL_SCRIPT.format(repo=REPO, devices=devices,
                                     workdir=str(tmp_path / f"run{devices}"), out=out)
    done = subprocess.run([sys.executable, "-c", script], env=_cpu_devices(devices),
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    return dict(np.load(out))


@pytest.mark.slow
def test_four_devices_compute_the_single_device_step(tmp_path):
    one, four = _run_on_devices(1, tmp_path), _run_on_devices(4, tmp_path)
    assert one.keys() == four.keys() and len(one) > 10
    for key in one:
        np.testing.assert_allclose(four[key], one[key], rtol=1e-4, atol=1e-5, err_msg=key)


def test_a_nonfinite_loss_stops_the_run_and_keeps_the_good_checkpoints(tmp_path, tiny_config):
    workdir = str(tmp_path / "run")
    search(tiny_config(max_steps=5), workdir)  # a good checkpoint at step 5
    # Same run continued with an absurd learning rate from step 5 on would be a different
    # config; a new run with it diverges, and must stop without saving a bad checkpoint.
    bad = str(tmp_path / "bad")
    with pytest.raises(FloatingPointError, match=r"NaN or infinite at step \d+"):
        search(tiny_config(**{"optim_w.lr": 1e30, "optim_w.grad_clip": 0.0,
                              "optim_w.lr_min": 0.0}), bad)
    saved = os.listdir(os.path.join(bad, "checkpoints"))
    assert saved == [], saved  # the first check (step 5) already saw the non-finite loss


def test_a_workdir_with_another_config_is_refused(tmp_path, tiny_config):
    workdir = str(tmp_path / "run")
    search(tiny_config(max_steps=2), workdir)
    with pytest.raises(ValueError, match=r"different config \(seed: 0 -> 1\)"):
        search(tiny_config(max_steps=2, seed=1), workdir)


@pytest.mark.parametrize("override,match", [
    ({"optim_w.lr": -0.1}, "config.optim_w.lr must be a positive number"),
    ({"batch_size": 0}, "config.batch_size must be a positive number"),
    ({"optim_w.lr_min": 1.0}, "exceeds"),
    ({"space.name": "nasnet"}, "Unknown search space 'nasnet'"),
    ({"strategy.name": "enas"}, "Unknown strategy 'enas'"),
    ({"dataset": "imagenet"}, "Unknown dataset 'imagenet'"),
    ({"batch_size": 4096}, "exceeds"),
])
def test_config_errors_are_clear(tmp_path, tiny_config, override, match):
    with pytest.raises(ValueError, match=match):
        search(tiny_config(**override), str(tmp_path / "run"))


@pytest.mark.parametrize("dataset", ["npz", "tfds"])
def test_darts_nb201_config_runs_a_few_steps(tmp_path, dataset, cifar10_subset_path):
    import tensorflow_datasets as tfds
    from experiments.configs import darts_nb201

    # The config as the papers set it, but for the supernet's size (C=16, N=5 takes minutes to
    # compile on a 2-core CPU; that size runs in benchmarks and by hand).
    config = darts_nb201.get_config()
    config.update_from_flattened_dict({"space.C": 4, "space.N": 1, "batch_size": 16,
                                       "max_steps": 2, "log_every": 1})
    if dataset == "npz":
        config.dataset = f"npz:{cifar10_subset_path}"
        result = search(config, str(tmp_path / "run"))
    else:
        with tfds.testing.mock_data(num_examples=64):
            result = search(config, str(tmp_path / "run"))
    assert result.steps == 2 and np.isfinite(result.metrics["train_loss"])
    records = [json.loads(l) for l in open(tmp_path / "run" / "metrics.jsonl")]
    assert [r["step"] for r in records] == [1, 2]


@pytest.mark.slow
def test_amended_s1_config_searches_with_its_auxiliary_tower(tmp_path, cifar10_subset_path):
    import ml_collections

    from experiments.configs import amended_cnn
    from jaxnas.engine import build

    # Space S1 (fixed edges, auxiliary tower, cutout) at a size that compiles in seconds (three
    # of its seven operations: 25 s instead of 65 on a 2-core CPU), with the first-order
    # strategy: the tower must be built at initialization and trained by the search.
    config = amended_cnn.get_config("s1")
    config.update_from_flattened_dict({
        "dataset": f"npz:{cifar10_subset_path}", "space.C": 2, "space.layers": 3,
        "space.ops": ("max_pool_3x3", "skip_connect", "sep_conv_3x3"),
        "batch_size": 8, "max_steps": 2, "log_every": 1})
    config.strategy = ml_collections.ConfigDict({"name": "darts"})
    start = build(config).initial_state().params["auxiliary"]
    result = search(config, str(tmp_path / "run"))
    assert result.steps == 2 and np.isfinite(result.metrics["train_loss"])
    kernel = start["Dense_0"]["kernel"]
    moved = result.state.params["auxiliary"]["Dense_0"]["kernel"]
    # Weight decay alone moves a weight by lr * wd = 7.5e-6 of itself per step.
    assert np.abs(moved - kernel).max() > 1e-3 * np.abs(kernel).max()


@pytest.mark.slow
def test_the_search_command_line(tmp_path):
    def search_command(workdir):
        # JAX_LOG_COMPILES: JAX logs each compilation and each persistent-cache hit.
        return subprocess.run(
            [sys.executable, "-m", "experiments.search",
             "--config=experiments/configs/quickstart.py", f"--workdir={workdir}",
             "--config.max_steps=12", "--config.log_every=6", "--config.batch_size=16",
             "--config.space.C=4", f"--compilation_cache={tmp_path / 'cache'}"],
            cwd=REPO, capture_output=True, text=True, env={**os.environ, "JAX_LOG_COMPILES": "1"})

    workdir = tmp_path / "cli"
    done = search_command(workdir)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "step 12/12" in done.stderr and "genotype: |" in done.stdout
    genotype = json.load(open(workdir / "genotype.json"))
    assert done.stdout.strip().endswith(genotype["arch_str"])
    # The same command in another workdir loads the search step compiled by the first.
    assert "Persistent compilation cache hit" not in done.stderr
    assert any((tmp_path / "cache").iterdir())
    again = search_command(tmp_path / "again")
    assert again.returncode == 0, again.stderr[-3000:]
    hits = re.findall(r"Persistent compilation cache hit for '(\w+)'", again.stderr)
    assert "jit_step" in hits, again.stderr[-3000:]
    assert json.load(open(tmp_path / "again" / "genotype.json")) == genotype
    refused = subprocess.run(
        [sys.executable, "-m", "experiments.search",
         "--config=experiments/configs/quickstart.py", f"--workdir={workdir}",
         "--config.optim_w.lr=-1"], cwd=REPO, capture_output=True, text=True)
    assert refused.returncode != 0 and "config.optim_w.lr must be a positive" in refused.stderr


def test_an_nb201_search_reports_its_benchmark_accuracy(tmp_path, tiny_config, nb201_table_path):
    from jaxnas.benchmarks import NB201Table

    workdir = tmp_path / "run"
    result = search(tiny_config(max_steps=10, nb201_table=nb201_table_path), str(workdir))
    expected = NB201Table.load(nb201_table_path).query(result.genotype)
    genotype = json.load(open(workdir / "genotype.json"))
    assert genotype["nb201"]["c10_test_200"] == pytest.approx(expected.c10_test_200)
    records = [json.loads(l) for l in open(workdir / "metrics.jsonl")]
    for record in records:  # every logged step holds the lookup of the genotype of that step
        assert record["nb201/c10_test"] == pytest.approx(
            NB201Table.load(nb201_table_path).query(record["genotype"]).c10_test_200)


@pytest.mark.slow
def test_a_batch_that_does_not_divide_across_devices_is_refused(tmp_path):
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {REPO!r})
        from experiments.configs import quickstart
        from jaxnas.engine import search
        c = quickstart.get_config()
        c.batch_size = 18
        search(c, {str(tmp_path / "run")!r})
    """)
    done = subprocess.run([sys.executable, "-c", script], env=_cpu_devices(4),
                          capture_output=True, text=True)
    assert done.returncode != 0
    assert "The batch size 18 does not divide across the 4 devices" in done.stderr
    assert not (tmp_path / "run").exists()  # refused before anything was written


# Every search config with what the papers fix: (strategy name, weight steps per alpha step T,
# architecture shapes) -- T=4 (NB201) and 5 (DARTS space) for iDARTS (Zhang thesis, Table 6.3);
# Amended-DARTS's S1 space: 8 fixed edges and 7 operations.
_SEARCH_CONFIGS = {
    "quickstart": ("darts", 1, {"cell": (6, 5)}),
    "darts_nb201": ("darts", 1, {"cell": (6, 5)}),
    "darts2_nb201": ("darts2", 1, {"cell": (6, 5)}),
    "idarts_nb201": ("idarts", 4, {"cell": (6, 5)}),
    "amended_nb201": ("amended", 1, {"cell": (6, 5)}),
    "darts_cnn": ("darts", 1, {"normal": (14, 8), "reduce": (14, 8)}),
    "darts2_cnn": ("darts2", 1, {"normal": (14, 8), "reduce": (14, 8)}),
    "idarts_cnn": ("idarts", 5, {"normal": (14, 8), "reduce": (14, 8)}),
    "amended_cnn": ("amended", 1, {"normal": (14, 8), "reduce": (14, 8)}),
    "amended_cnn:s1": ("amended", 1, {"normal": (8, 7), "reduce": (8, 7)}),
    "balenas_nb201:first_order": ("balenas", 1, {"cell": (6, 5)}),
    "balenas_nb201:second_order": ("balenas", 1, {"cell": (6, 5)}),
    "balenas_cnn:second_order": ("balenas", 1, {"normal": (14, 8), "reduce": (14, 8)}),
    **{f"constrained_cnn:{variant}": ("constrained", 1, {
        "normal": (14, 7 if "crb" in variant else 8), "reduce": (14, 7 if "crb" in variant else 8)})
       for variant in ("darts", "cs10", "fimt", "crb", "fimt_crb", "pr", "pr_fimt",
                       "pr_fimt_crb", "admm", "admm_fimt", "admm_fimt_crb")},
}


@pytest.mark.parametrize("name", sorted(_SEARCH_CONFIGS))
def test_every_search_config_builds_the_papers_search(name):
    import importlib

    from jaxnas.engine import build

    module, _, variant = name.partition(":")
    get_config = importlib.import_module(f"experiments.configs.{module}").get_config
    config = get_config(variant) if variant else get_config()
    config.dataset = "digits"  # the configs' own data sets need a download
    setup = build(config)
    strategy, inner_steps, shapes = _SEARCH_CONFIGS[name]
    assert setup.strategy.name == strategy == config.strategy.name
    assert setup.per_step["train"] == inner_steps
    assert {k: tuple(v) for k, v in setup.space.arch_shapes().items()} == shapes


def test_the_nb201_configs_follow_the_nas_bench_201_code():
    # AutoDL-Projects: configs/nas-benchmark/algos/DARTS.config (wd 5e-4, Nesterov momentum 0.9,
    # lr 0.025 cosine to 0.001, 50 epochs, batch 64); DARTS-V1.py updates the weights first,
    # DARTS-V2.py the architecture first with the momentum/weight-decay virtual step.
    from experiments.configs import amended_cnn, darts2_nb201, darts_nb201, idarts_nb201
    from jaxnas.engine import build

    built = {}
    for module in (darts_nb201, darts2_nb201, idarts_nb201):
        config = module.get_config()
        config.dataset = "digits"
        assert (config.optim_w.weight_decay, config.optim_w.nesterov, config.optim_w.momentum,
                config.optim_w.lr, config.optim_w.lr_min, config.epochs, config.batch_size) == (
            5e-4, True, 0.9, 0.025, 0.001, 50, 64)
        built[module.__name__.split(".")[-1]] = build(config)
    assert built["darts_nb201"].strategy.schedule.alpha_first is False
    assert built["darts2_nb201"].strategy.schedule.alpha_first is True
    assert built["darts2_nb201"].strategy.virtual_step == "momentum"
    problem = built["darts2_nb201"].problem
    assert (problem.w_momentum, problem.w_weight_decay) == (0.9, 5e-4)
    assert built["idarts_nb201"].strategy.schedule.alpha_first is False  # T steps, then alpha
    s1 = amended_cnn.get_config("s1")
    s1.dataset = "digits"
    s1.update_from_flattened_dict({"space.C": 2, "space.layers": 3, "aux_weight": 0.0})
    s1.space.auxiliary = False  # 8x8 digits are too small for the tower; drop-path is the point
    setup = build(s1)
    assert s1.drop_path == 0.2 and setup.problem.drop_path is not None
    per_epoch = setup.steps_per_epoch
    assert float(setup.problem.drop_path(0)) == 0.0  # DARTS's linear ramp by epoch
    assert float(setup.problem.drop_path(50 * per_epoch)) == pytest.approx(0.1)
