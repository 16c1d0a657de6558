"""The retraining loop: its pure pieces against closed forms, the published network sizes, the
ImageNet config's shapes, the workdir, resume, compile-once, the CLI and the errors. Tiny networks
(DARTS space C=4 with 3 cells, NB201 C=4 with 1 cell per stage) on the 8x8 digits and a few
32x32 CIFAR-10 images."""

import json
import math
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments.configs import (train_darts_cifar, train_darts_imagenet, train_nb201,
                                 train_quickstart)
from jaxnas.data import data_mesh, load_dataset, normalize
from jaxnas.engine import train_loop as train_lib
from jaxnas.engine.optim import drop_path_by_epoch, epoch_schedule
from jaxnas.engine.train_loop import (build, init_state, make_network,
                                      make_step, network_size, smoothed_cross_entropy, train,
                                      training_loss)
from jaxnas.spaces import PUBLISHED, load_genotype, save_genotype

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _config(module, **overrides):
    """``module.get_config()`` with dotted ``overrides`` (e.g. ``optim_w.lr``)."""
    config = module.get_config()
    config.update_from_flattened_dict(overrides)
    return config


def _flat(tree):
    return {jax.tree_util.keystr(path): leaf
            for path, leaf in jax.tree_util.tree_flatten_with_path(jax.device_get(tree))[0]}


# Tiny DARTS-space runs: on the digits (8x8: no auxiliary head), and on 32x32 CIFAR-10 images with
# every regularizer of the evaluation protocol (auxiliary head, drop-path, crop, flip, cutout).
DIGITS = dict(dataset="digits", **{"space.C": 4}, batch_size=32, epochs=2, log_every=4,
              checkpoint_every=8, eval_every=1)
CIFAR = dict(**{"space.C": 4, "space.layers": 3}, batch_size=8, epochs=2, log_every=1,
             checkpoint_every=2, eval_every=1)


@pytest.fixture
def tiny_cifar(tmp_path, cifar10_subset_path):
    """npz:PATH of 32 train and 20 test images of the CIFAR-10 subset."""
    with np.load(cifar10_subset_path) as data:
        arrays = {"x_train": data["x_train"][:32], "y_train": data["y_train"][:32],
                  "x_test": data["x_test"][:20], "y_test": data["y_test"][:20]}
    np.savez(tmp_path / "tiny_cifar.npz", **arrays)
    return f"npz:{tmp_path / 'tiny_cifar.npz'}"


@pytest.fixture
def nb201_genotype_json(tmp_path):
    """A genotype.json as an NB201 search writes it (with its extra fields)."""
    arch = "|nor_conv_3x3~0|+|nor_conv_3x3~0|none~1|+|skip_connect~0|nor_conv_1x1~1|avg_pool_3x3~2|"
    path = tmp_path / "genotype.json"
    save_genotype(load_genotype(arch), path, strategy="darts", step=100)
    return str(path)


# A genotype.json as a search writes it, with TND-NAS's (op, input, node) triples: node 2 has one
# input, node 5 four (the extra fields of a search's file are ignored).
TND_GENES = {
    "normal": [["sep_conv_3x3", 0, 2], ["skip_connect", 1, 3], ["conv_1x1", 2, 3],
               ["dil_conv_3x3", 0, 4], ["max_pool_3x3", 3, 4], ["skip_connect", 0, 5],
               ["sep_conv_5x5", 1, 5], ["conv_3x1_1x3", 3, 5], ["avg_pool_3x3", 4, 5]],
    "reduce": [["max_pool_3x3", 0, 2], ["max_pool_5x5", 1, 2], ["skip_connect", 2, 3],
               ["sep_conv_3x3", 1, 4], ["max_pool_3x3", 0, 5], ["skip_connect", 4, 5]]}


@pytest.fixture
def tnd_genotype_json(tmp_path):
    path = tmp_path / "genotype.json"
    path.write_text(json.dumps({"space": "darts", "normal_concat": [2, 3, 4, 5],
                                "reduce_concat": [2, 3, 4, 5], "strategy": "tnd", **TND_GENES}))
    return str(path)


# The NB201 network at C=4 with one cell per stage, on the digits.
NB201 = dict(dataset="digits", **{"space.C": 4, "space.N": 1}, augment=False, batch_size=16,
             log_every=1, eval_every=0)


# ------------------------------------------------------------------ pure pieces, closed forms


def test_label_smoothing_closed_form():
    # K = 2, p = softmax(0, log 3) = (1/4, 3/4), label 1: targets (eps/2, 1 - eps/2).
    logits, labels = jnp.array([[0.0, math.log(3.0)]]), jnp.array([1])
    expected = -(0.05 * math.log(0.25) + 0.95 * math.log(0.75))
    np.testing.assert_allclose(smoothed_cross_entropy(logits, labels, 0.1), expected, rtol=1e-6)
    np.testing.assert_allclose(smoothed_cross_entropy(logits, labels, 0.0), -math.log(0.75),
                               rtol=1e-6)
    # Uniform logits over K classes: log K whatever the smoothing.
    uniform = jnp.zeros((3, 1000))
    np.testing.assert_allclose(smoothed_cross_entropy(uniform, jnp.array([0, 5, 999]), 0.1),
                               math.log(1000), rtol=1e-6)


def test_aux_loss_weighting_closed_form():
    labels = jnp.array([1])
    logits = jnp.zeros((1, 2))  # log 2
    aux_logits = jnp.array([[0.0, math.log(3.0)]])  # -log(3/4)
    np.testing.assert_allclose(training_loss(logits, aux_logits, labels, 0.4),
                               math.log(2) + 0.4 * math.log(4 / 3), rtol=1e-6)
    np.testing.assert_allclose(training_loss(logits, None, labels, 0.4), math.log(2), rtol=1e-6)
    smoothed = math.log(2) + 0.4 * -(0.05 * math.log(0.25) + 0.95 * math.log(0.75))
    np.testing.assert_allclose(training_loss(logits, aux_logits, labels, 0.4, 0.1), smoothed,
                               rtol=1e-6)


def test_drop_path_rises_linearly_per_epoch():
    # DARTS: drop_path_prob * epoch / epochs, set at the start of each epoch.
    schedule = drop_path_by_epoch(0.2, 600, 520)
    steps = jnp.array([0, 519, 520, 300 * 520, 600 * 520 - 1])
    np.testing.assert_allclose(schedule(steps), [0.0, 0.0, 0.2 / 600, 0.1, 0.2 * 599 / 600],
                               rtol=1e-6)


def test_learning_rate_schedules():
    cosine = epoch_schedule(_config(train_darts_cifar).optim_w, 600, 520)
    np.testing.assert_allclose(cosine(jnp.array([0, 300 * 520, 450 * 520])),
                               [0.025, 0.0125, 0.025 * (1 + math.cos(0.75 * math.pi)) / 2],
                               rtol=1e-5)
    exponential = epoch_schedule(_config(train_darts_imagenet).optim_w, 250, 10009)
    np.testing.assert_allclose(exponential(jnp.array([10008, 10009, 2 * 10009 + 5])),
                               [0.1, 0.097, 0.1 * 0.97**2], rtol=1e-6)
    linear = epoch_schedule(_config(train_darts_imagenet, **{"optim_w.schedule": "linear",
                                                          "optim_w.lr": 0.5}).optim_w, 250, 10)
    np.testing.assert_allclose(linear(jnp.array([0, 1250, 2499])), [0.5, 0.25, 0.5 * 1 / 250],
                               rtol=1e-4)  # 1 - 249/250 in float32


def test_top5_test_accuracy_over_a_padded_test_split(nb201_genotype_json):
    """20 classes: top-1 and top-5 of 13 test images in batches of 4 (3 padded), against a direct
    evaluation of all 13 at once."""
    from jaxnas.data import ImageDataset

    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (13, 8, 8, 1), dtype=np.uint8)
    y = rng.integers(0, 20, 13).astype(np.int32)
    data = ImageDataset("random", x, y, x, y, 20, (0.5,), (0.25,))
    config = _config(train_nb201, **{**NB201, "batch_size": 4})
    setup = build(config, load_genotype(nb201_genotype_json), 20, (8, 8, 1), data.mean,
                  data.std, 13)
    state = init_state(setup, 0)
    mesh = data_mesh()
    result = train_lib.evaluate(train_lib.make_evaluate(setup, mesh), setup, state, data, config, mesh)
    logits = np.asarray(jax.jit(setup.net.apply)(
        {"params": state.params, "batch_stats": state.batch_stats}, normalize(x, (0.5,), (0.25,))))
    rank = np.sum(logits > logits[np.arange(13), y][:, None], axis=1)  # classes scored higher
    log_p = jax.nn.log_softmax(logits)
    expected = {"test_loss": -np.mean(log_p[np.arange(13), y]),
                "test_accuracy": np.mean(rank < 1), "test_top5_accuracy": np.mean(rank < 5)}
    assert result.keys() == expected.keys()
    for key in expected:
        np.testing.assert_allclose(result[key], expected[key], rtol=1e-5, err_msg=key)


# ------------------------------------------------------------------ published sizes, shapes


def test_darts_v2_evaluation_network_size_is_the_published_one():
    net = make_network(_config(train_darts_cifar), PUBLISHED["DARTS_V2"], 10)
    params, macs = network_size(net, (32, 32, 3))
    assert params == 3_349_342  # DARTS's genotypes.py network at C=36, 20 cells, no aux head
    assert round(macs / 1e6) == 528  # Zhang thesis Table 3.1 (GDAS's conv + linear counter)


def test_imagenet_config_builds_and_one_step_has_the_right_shapes():
    config = _config(train_darts_imagenet)
    setup = build(config, PUBLISHED["DARTS_V2"], 1000, (224, 224, 3), (0.485, 0.456, 0.406),
                  (0.229, 0.224, 0.225), 1_281_167)
    assert setup.steps_per_epoch == 1_281_167 // 128 and setup.total_steps == 250 * 10009
    assert setup.net.imagenet and setup.net.auxiliary and setup.drop_path is None
    state = jax.eval_shape(lambda: init_state(
        setup, 0, init=lambda net, key, *a, **kw: net.init(key, *a, **kw)))
    count = lambda tree: sum(math.prod(x.shape) for x in jax.tree.leaves(tree))
    # DARTS's ImageNet network: 4.7M parameters without the auxiliary head.
    assert round((count(state.params) - count(state.params["auxiliary"])) / 1e5) == 47
    assert state.params["auxiliary"]["Dense_0"]["kernel"].shape == (768, 1000)
    assert state.params["classifier"]["kernel"].shape == (4 * 4 * 48, 1000)  # 4 nodes of 4C
    batch = {"image": jax.ShapeDtypeStruct((128, 224, 224, 3), jnp.uint8),
             "label": jax.ShapeDtypeStruct((128,), jnp.int32)}
    new, metrics = jax.eval_shape(make_step(setup, data_mesh()), state, batch)
    assert jax.tree.structure(new) == jax.tree.structure(state)
    assert [(a.shape, a.dtype) for a in jax.tree.leaves(new)] == \
        [(a.shape, a.dtype) for a in jax.tree.leaves(state)]
    assert {k: v.shape for k, v in metrics.items()} == {
        "train_loss": (), "train_accuracy": (), "lr": ()}


def test_imagenet_in_memory_is_refused_with_an_explanation(tmp_path):
    config = _config(train_darts_imagenet, data_pipeline="memory", image_size=0)
    with pytest.raises(ValueError, match="in-memory pipeline.*npz:PATH"):
        train(config, "DARTS_V2", str(tmp_path / "run"))


# ------------------------------------------------------------------ runs


def test_retrain_a_published_genotype_writes_the_workdir(tmp_path, monkeypatch):
    """DARTS_V2 on the digits: the workdir, the report, the eval against a direct full-batch
    evaluation, and one compilation each of the train step and of the eval pass."""
    traces = {"loss": 0, "eval": 0}
    for name, key in (("training_loss", "loss"), ("top_k_correct", "eval")):
        original = getattr(train_lib, name)
        monkeypatch.setattr(train_lib, name, lambda *a, _f=original, _k=key, **kw: (
            traces.__setitem__(_k, traces[_k] + 1), _f(*a, **kw))[1])
    workdir = str(tmp_path / "run")
    result = train(_config(train_quickstart, **DIGITS), "DARTS_V2", workdir)
    report = result.report
    steps = 2 * (1437 // 32)
    assert report["steps"] == steps == int(result.state.step) and report["epochs_done"] == 2
    assert traces == {"loss": 1, "eval": 1}  # after 22 logs, 11 checkpoints, 2 evaluations
    files = set(os.listdir(workdir))
    assert {"config.json", "genotype.json", "checkpoints", "metrics.jsonl", "report.json",
            "training_curves.png", "genotype.png", "genotype.svg"} <= files
    assert any(f.startswith("events.out.tfevents") for f in files)
    assert json.load(open(os.path.join(workdir, "report.json"))) == report
    assert json.load(open(os.path.join(workdir, "genotype.json"))) == \
        PUBLISHED["DARTS_V2"].to_dict()
    records = [json.loads(line) for line in open(os.path.join(workdir, "metrics.jsonl"))]
    evals = [r["step"] for r in records if "test_accuracy" in r]
    assert evals == [steps // 2, steps]
    # Eval mode over the whole test split (360 digits; the last batch of 32 padded) equals a
    # direct evaluation in one batch.
    data = load_dataset("digits")
    net = make_network(_config(train_quickstart, **DIGITS), PUBLISHED["DARTS_V2"], 10)
    logits = jax.jit(net.apply)({"params": result.state.params,
                                 "batch_stats": result.state.batch_stats},
                                normalize(data.x_test, data.mean, data.std))
    np.testing.assert_allclose(report["test_accuracy"],
                               np.mean(np.argmax(logits, -1) == data.y_test), rtol=1e-6)
    log_p = jax.nn.log_softmax(logits)
    np.testing.assert_allclose(report["test_loss"],
                               -np.mean(log_p[np.arange(360), data.y_test]), rtol=1e-4)
    assert "test_top5_accuracy" not in report  # 10 classes
    params, macs = network_size(net, (8, 8, 1))
    assert report["params"] == params and report["macs"] == macs
    # Learning happened: two epochs take the digits well above chance.
    train_losses = [r["train_loss"] for r in records if "train_loss" in r]
    assert report["test_accuracy"] > 0.5 and train_losses[-1] < 0.5 * math.log(10)


def test_resume_after_interruption_equals_an_uninterrupted_run(tmp_path, tiny_cifar,
                                                              tnd_genotype_json):
    """A searched genotype with variable in-degree, with the auxiliary head, drop-path, crop, flip
    and cutout on 32x32 images: interrupted after 3 steps and resumed, it ends where an
    uninterrupted run does."""
    config = _config(train_darts_cifar, dataset=tiny_cifar, **CIFAR)
    full = train(config, tnd_genotype_json, str(tmp_path / "full"))
    assert full.report["genotype"]["normal"] == TND_GENES["normal"]
    cell = full.state.params["cell0"]["dag"]
    assert {"edge_3_2", "edge_5_1", "edge_5_3"} <= set(cell) and "edge_2_1" not in cell
    total = sum(x.size for x in jax.tree.leaves(full.state.params))
    aux = sum(x.size for x in jax.tree.leaves(full.state.params["auxiliary"]))
    assert aux > 0 and full.report["params"] == total - aux  # trained, not counted
    part = str(tmp_path / "part")
    train(_config(train_darts_cifar, dataset=tiny_cifar, max_steps=3, **CIFAR),
          tnd_genotype_json, part)
    assert sorted(int(s) for s in os.listdir(os.path.join(part, "checkpoints"))) == [2, 3]
    resumed = train(config, tnd_genotype_json, part)
    assert int(resumed.state.step) == int(full.state.step) == 8
    for name in ("params", "batch_stats", "opt_w"):
        a, b = _flat(getattr(full.state, name)), _flat(getattr(resumed.state, name))
        assert a.keys() == b.keys()
        for key in a:
            np.testing.assert_allclose(b[key], a[key], rtol=1e-5, atol=1e-6, err_msg=key)
    assert resumed.report["test_loss"] == pytest.approx(full.report["test_loss"], rel=1e-5)
    steps = [json.loads(line)["step"] for line in open(os.path.join(part, "metrics.jsonl"))
             if "train_loss" in line]
    assert steps == sorted(set(steps)) == list(range(1, 9))


def test_retrain_an_nb201_genotype_json(tmp_path, nb201_genotype_json):
    """The NB201 training pipeline on a genotype.json as a search writes it."""
    config = _config(train_nb201, **NB201, max_steps=3)
    result = train(config, nb201_genotype_json, str(tmp_path / "run"))
    genotype = load_genotype(nb201_genotype_json)
    assert result.report["genotype"]["arch_str"] == genotype.arch_str
    assert result.report["steps"] == 3 and np.isfinite(result.report["test_loss"])
    net = make_network(config, genotype, 10)
    assert result.report["params"] == network_size(net, (8, 8, 1))[0]
    assert "edge_2_1" not in result.state.params["stage0_cell0"]["dag"]  # the none edge


@pytest.mark.slow
def test_cli_trains_end_to_end_and_the_workdir_is_guarded(tmp_path):
    workdir = str(tmp_path / "run")
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    done = subprocess.run(
        [sys.executable, "-m", "experiments.train", "--genotype=DARTS_V2",
         "--config=experiments/configs/train_quickstart.py", f"--workdir={workdir}",
         "--config.max_steps=2", "--config.space.C=4"],
        cwd=REPO, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.load(open(os.path.join(workdir, "report.json")))
    assert report["steps"] == 2 and report["epochs"] == 5 and report["test_examples"] == 360
    assert "test accuracy:" in done.stdout and "step 2/2" in done.stderr
    config = _config(train_quickstart, **{"space.C": 4})
    with pytest.raises(ValueError, match=r"trains the genotype .* not .*Use a new --workdir"):
        train(config, "PDARTS", workdir)
    with pytest.raises(ValueError, match=r"different config \(seed: 0 -> 1\)"):
        train(_config(train_quickstart, **{"space.C": 4}, seed=1), "DARTS_V2", workdir)


def test_a_nonfinite_loss_stops_the_run_and_keeps_the_last_good_checkpoint(
        tmp_path, nb201_genotype_json):
    workdir = str(tmp_path / "run")
    config = _config(train_nb201, **NB201, **{"optim_w.lr": 1e30}, checkpoint_every=1)
    with pytest.raises(FloatingPointError, match=r"NaN or infinite at step (\d+)") as error:
        train(config, nb201_genotype_json, workdir)
    bad = int(error.value.args[0].split("at step ")[1].split(".")[0])
    saved = sorted(int(s) for s in os.listdir(os.path.join(workdir, "checkpoints")))
    # The bad step is named as the progress line counts it (steps done); the checkpoints stop
    # at the step before it.
    assert saved and saved[-1] == bad - 1
    assert f"last good checkpoint (step {bad - 1})" in str(error.value)


# ------------------------------------------------------------------ errors


@pytest.mark.parametrize("override,match", [
    ({"optim_w.lr": -0.1}, "config.optim_w.lr must be a positive number"),
    ({"batch_size": 0}, "config.batch_size must be a positive number"),
    ({"optim_w.schedule": "step"}, "config.optim_w.schedule must be one of"),
    ({"drop_path": 1.0}, "config.drop_path must be below 1"),
    ({"aux_weight": 0.4}, "auxiliary head needs larger images"),
    ({"batch_size": 4096}, "exceeds the 1437 training images"),
    ({"space.name": "nb201"}, "darts-space genotype, but config.space.name is 'nb201'"),
])
def test_config_errors_are_clear(tmp_path, override, match):
    with pytest.raises(ValueError, match=match):
        train(_config(train_quickstart, **override), "DARTS_V2", str(tmp_path / "run"))
    assert not os.path.exists(tmp_path / "run")  # refused before claiming the workdir


def test_genotype_errors_are_clear(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a published genotype name.*DARTS_V2"):
        train(_config(train_quickstart), "DARTS_V3", str(tmp_path / "run"))
    arch = "|nor_conv_3x3~0|+|nor_conv_3x3~0|none~1|+|skip_connect~0|nor_conv_3x3~1|none~2|"
    with pytest.raises(ValueError, match="nb201-space genotype.*train_nb201.py"):
        train(_config(train_quickstart), arch, str(tmp_path / "run"))
    with pytest.raises(ValueError, match="no auxiliary head, drop-path or ImageNet stem"):
        make_network(_config(train_nb201, drop_path=0.2), load_genotype(arch), 10)


def test_a_workdir_of_another_genotype_is_refused_before_training(tmp_path):
    workdir = tmp_path / "run"
    workdir.mkdir()
    save_genotype(PUBLISHED["PDARTS"], workdir / "genotype.json")
    config = _config(train_quickstart)
    with pytest.raises(ValueError, match="trains the genotype"):
        train(config, "DARTS_V2", str(workdir))
    assert not (workdir / "config.json").exists()
