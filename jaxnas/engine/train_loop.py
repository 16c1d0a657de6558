"""The retraining loop: a genotype's discrete network trained from scratch, the way the papers
evaluate a searched cell.

``train(config, genotype, workdir)`` builds the network of ``genotype`` (see
``experiments/configs/train_*.py``), trains it on the whole training set with one jitted step,
data-parallel over every device, evaluates it on the test split (eval mode: running batch-norm
statistics) every ``config.eval_every`` epochs and at the end, and writes to ``workdir``:
``checkpoints/``, ``config.json``, ``genotype.json`` (the genotype trained, compared on resume),
``metrics.jsonl``, TensorBoard events, ``training_curves.png``, ``genotype.png/.svg`` and
``report.json``. Re-running the same command resumes from the last complete checkpoint.

``config.data_pipeline`` picks how the data is read: ``memory`` holds the whole set as uint8
arrays (``jaxnas.data.sources``), which fits CIFAR (150 MB) but not ImageNet (~150 GB of
variable-size JPEGs; ``tfds:imagenet2012`` is refused there with an explanation); ``grain``
streams it from ArrayRecord files (``jaxnas.data.streaming``), fitted to ``config.image_size``,
and saves the loader's state in each checkpoint. Both feed the same step the same batches.
"""

import dataclasses
import json
import os
import time
from typing import Any, Callable

import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxnas import viz
from jaxnas.data import (BatchStream, EvalReader, StepReader, check_batch_size, data_mesh, loader,
                         local_rows, normalize, padded_batches, preprocess, replicated, to_global)
from jaxnas.distributed import on_chief
from jaxnas.engine import config as config_lib
from jaxnas.engine.checkpoints import Checkpoints
from jaxnas.engine.loop import (check_finite, collector_paused, first_nonfinite_step, open_data,
                                replicated_seconds, resume, step_batches, validate_data)
from jaxnas.engine.metrics import MetricsWriter, Progress, format_duration
from jaxnas.engine.optim import drop_path_by_epoch, epoch_schedule, weight_optimizer
from jaxnas.engine.workdir import check_workdir, claim_workdir, locked
from jaxnas.files import write_json
from jaxnas.log import logger
from jaxnas.spaces import (genotype_from_dict, get_space, init_variables, load_genotype,
                           save_genotype)
from jaxnas.spaces.flops import module_cost
from jaxnas.strategies.problem import accuracy
from jaxnas.trees import tree_index

_ADVICE = ("Lower the learning rate and resume from the last good checkpoint with "
           "--allow_config_change=optim_w.lr (and the new value), or check the data.")


class TrainState(flax.struct.PyTreeNode):
    """The whole state of a training run. ``nonfinite_step``: the first step whose loss was NaN
    or infinite (-1: none yet); ``seconds``: wall time spent training, as of the last checkpoint.
    The data position is ``step`` (one batch per step)."""

    step: jax.Array
    params: Any
    batch_stats: Any
    opt_w: Any
    rng: jax.Array
    nonfinite_step: jax.Array
    seconds: jax.Array


@dataclasses.dataclass
class TrainResult:
    report: dict
    state: TrainState


# ---------------------------------------------------------------------------------------------
# Pure pieces: the loss, the schedules.


def smoothed_cross_entropy(logits, labels, smoothing: float = 0.0):
    """Mean cross-entropy against targets ``(1 - smoothing) * one_hot + smoothing / K``
    (DARTS's ``CrossEntropyLabelSmooth``); logits [B, K], labels int [B]."""
    targets = optax.smooth_labels(jax.nn.one_hot(labels, logits.shape[-1]), smoothing)
    return optax.softmax_cross_entropy(logits, targets).mean()


def training_loss(logits, aux_logits, labels, aux_weight: float, smoothing: float = 0.0):
    """``L(logits) + aux_weight * L(aux_logits)`` (the auxiliary term only when ``aux_logits`` is
    not None), ``L`` the label-smoothed cross-entropy."""
    loss = smoothed_cross_entropy(logits, labels, smoothing)
    if aux_logits is not None:
        loss = loss + aux_weight * smoothed_cross_entropy(aux_logits, labels, smoothing)
    return loss


def top_k_correct(logits, labels, k: int):
    """Whether each label is among the ``k`` largest logits: bool [B]."""
    return jnp.any(jax.lax.top_k(logits, k)[1] == labels[:, None], axis=-1)


# ---------------------------------------------------------------------------------------------
# Building a run from its config.


def validate(config) -> None:
    """Clear errors for config values a training run cannot use."""
    config_lib.require_positive(config, "batch_size", "epochs", "optim_w.lr", "log_every",
                                "checkpoint_every", "keep_checkpoints")
    config_lib.require_nonnegative(config, "optim_w.lr_min", "optim_w.weight_decay",
                                   "optim_w.momentum", "optim_w.grad_clip", "cutout",
                                   "max_steps", "eval_every", "aux_weight", "drop_path",
                                   "label_smoothing", "num_classes")
    validate_data(config)
    epoch_schedule(config.optim_w, config.epochs, 1)  # raises for an unknown schedule
    if config.optim_w.lr_min > config.optim_w.lr:
        raise ValueError(f"config.optim_w.lr_min ({config.optim_w.lr_min}) exceeds "
                         f"config.optim_w.lr ({config.optim_w.lr}).")
    if not 0.0 < config.optim_w.decay <= 1.0:
        raise ValueError(f"config.optim_w.decay must be in (0, 1], got {config.optim_w.decay}.")
    for name in ("drop_path", "label_smoothing"):
        if not config[name] < 1.0:
            raise ValueError(f"config.{name} must be below 1, got {config[name]}.")


def make_network(config, genotype, num_classes: int):
    """The evaluation network of ``genotype`` for ``config`` (space, width, depth, auxiliary
    head, drop-path, stem). Raises ValueError when the genotype is of another space."""
    if genotype.space != config.space.name:
        example = "train_nb201" if genotype.space == "nb201" else "train_darts_cifar"
        raise ValueError(
            f"The genotype {genotype} is a {genotype.space}-space genotype, but "
            f"config.space.name is {config.space.name!r}; use a {genotype.space} training "
            f"config, e.g. --config=experiments/configs/{example}.py.")
    space = get_space(**config.space.to_dict())
    if space.name == "darts":
        return space.network(genotype, num_classes, auxiliary=config.aux_weight > 0,
                             drop_path=config.drop_path > 0, imagenet=config.imagenet_stem)
    for name in ("aux_weight", "drop_path", "imagenet_stem"):
        if config[name]:
            raise ValueError(f"config.{name} is {config[name]!r}, but the {space.name} network "
                             "has no auxiliary head, drop-path or ImageNet stem; set it to 0.")
    return space.network(genotype, num_classes)


def network_size(net, image_shape) -> tuple[int, int]:
    """``(parameters, multiply-adds per example)`` of ``net`` in eval mode (without the
    auxiliary head) on images ``image_shape`` [H, W, C]; traced, never run."""
    return module_cost(net, (1,) + tuple(image_shape), train=False)


def _check_aux_head_fits(net, image_shape) -> None:
    """The auxiliary head pools 5x5 (stride 3; 2 on ImageNet) then convolves 2x2: its input,
    after the stem and two reductions, must leave at least 2x2 after the pooling."""
    if not getattr(net, "auxiliary", False):
        return
    side = min(image_shape[:2])
    for _ in range(2 + (3 if net.imagenet else 0)):
        side = -(-side // 2)
    stride = 2 if net.imagenet else 3
    if (side - 5) // stride + 1 < 2:
        raise ValueError(f"The auxiliary head needs larger images than {image_shape[:2]} (it "
                         f"would see {side}x{side}); use 32x32 images (224x224 with the "
                         "ImageNet stem) or set config.aux_weight=0.")


@dataclasses.dataclass(frozen=True)
class TrainSetup:
    """The static parts of a run: the network, its preprocessing, optimizer and schedules.

    Attributes:
      net: the discrete network; ``init_net`` the same with drop-path off (initialization runs
        it in training mode, where drop-path would need an rng).
      lr, drop_path: update count -> learning rate / drop-path probability (``drop_path`` None
        when the network has none).
    """

    net: Any
    init_net: Any
    image_shape: tuple[int, int, int]
    num_classes: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    augment: bool
    cutout: int
    tx: optax.GradientTransformation
    lr: Callable
    drop_path: Callable | None
    aux_weight: float
    label_smoothing: float
    steps_per_epoch: int
    total_steps: int

    def loss(self, params, batch_stats, x, y, step, key):
        """Training-mode loss on float images x [B, H, W, C], labels y [B] at ``step``
        (drop-path rate) with dropout ``key``. Returns ``(loss, (new_batch_stats, accuracy))``."""
        kwargs = {"drop_path_rate": self.drop_path(step)} if self.drop_path else {}
        out, updates = self.net.apply({"params": params, "batch_stats": batch_stats}, x,
                                      train=True, mutable=["batch_stats"],
                                      rngs={"dropout": key}, **kwargs)
        logits, aux_logits = out if isinstance(out, tuple) else (out, None)
        loss = training_loss(logits, aux_logits, y, self.aux_weight, self.label_smoothing)
        return loss, (updates["batch_stats"], accuracy(logits, y))

    @property
    def top_k(self) -> tuple[int, ...]:
        """The test accuracies reported: top-1, and top-5 with more than 10 classes."""
        return (1, 5) if self.num_classes > 10 else (1,)


def build(config, genotype, num_classes: int, image_shape, mean, std,
          num_train: int) -> TrainSetup:
    """Validates ``config`` and builds the run of ``genotype`` on a dataset of ``num_train``
    training images [H, W, C] (nothing is loaded or run)."""
    validate(config)
    net = make_network(config, genotype, num_classes)
    _check_aux_head_fits(net, image_shape)
    steps_per_epoch = num_train // config.batch_size
    if steps_per_epoch == 0:
        raise ValueError(f"config.batch_size ({config.batch_size}) exceeds the {num_train} "
                         "training images; lower the batch size.")
    total_steps = config.epochs * steps_per_epoch
    if config.max_steps:
        total_steps = min(total_steps, config.max_steps)
    lr = epoch_schedule(config.optim_w, config.epochs, steps_per_epoch)
    drop_path = (drop_path_by_epoch(config.drop_path, config.epochs, steps_per_epoch)
                 if config.drop_path else None)
    return TrainSetup(
        net, net.clone(drop_path=False) if drop_path else net, tuple(image_shape), num_classes,
        tuple(mean), tuple(std), config.augment, config.cutout,
        weight_optimizer(config.optim_w, lr), lr, drop_path, config.aux_weight,
        config.label_smoothing, steps_per_epoch, total_steps)


def init_state(setup: TrainSetup, seed: int, init=init_variables) -> TrainState:
    """The state at step 0. ``init(net, key, x, train=True)`` draws the variables (the auxiliary
    head is built in training mode); pass a traceable one (``net.init``) under ``eval_shape``."""
    k_net, k_run = jax.random.split(jax.random.PRNGKey(seed))
    x = jnp.zeros((1,) + setup.image_shape, jnp.float32)
    variables = init(setup.init_net, k_net, x, train=True)
    params = variables["params"]
    return TrainState(step=jnp.zeros((), jnp.int32), params=params,
                      batch_stats=variables.get("batch_stats", {}), opt_w=setup.tx.init(params),
                      rng=k_run, nonfinite_step=jnp.full((), -1, jnp.int32),
                      seconds=jnp.zeros((), jnp.float32))


def make_step(setup: TrainSetup, mesh):
    """The jitted train step: ``(state, batch) -> (state, metrics)`` with batch ``{"image":
    uint8 [B, H, W, C], "label": [B]}`` sharded over ``mesh``. Compiled once per run; the old
    state's buffers are donated."""

    def step(state, batch):
        k_aug, k_drop = jax.random.split(jax.random.fold_in(state.rng, state.step))
        x = preprocess(k_aug, batch["image"], setup.mean, setup.std, augment=setup.augment,
                       cutout=setup.cutout)
        grad_fn = jax.value_and_grad(setup.loss, has_aux=True)
        (loss, (batch_stats, acc)), grads = grad_fn(state.params, state.batch_stats, x,
                                                    batch["label"], state.step, k_drop)
        updates, opt_w = setup.tx.update(grads, state.opt_w, state.params)
        params = optax.apply_updates(state.params, updates)
        metrics = {"train_loss": loss, "train_accuracy": acc, "lr": setup.lr(state.step)}
        if setup.drop_path:
            metrics["drop_path"] = setup.drop_path(state.step)
        new = state.replace(step=state.step + 1, params=params, batch_stats=batch_stats,
                            opt_w=opt_w)
        return new.replace(nonfinite_step=first_nonfinite_step(state, new, metrics)), metrics

    rep = replicated(mesh)
    return jax.jit(step, out_shardings=(rep, rep), donate_argnums=0)


def make_evaluate(setup: TrainSetup, mesh):
    """The jitted eval-mode pass over one test batch, accumulated: ``(totals, params,
    batch_stats, batch) -> totals``, the sums of the cross-entropy (``"loss"``) and of the
    top-k hits (``"top1"``, ``"top5"``: ``setup.top_k``) over the examples that
    ``batch["mask"]`` [B] marks (0 for the padding of the last batch)."""

    def accumulate(totals, params, batch_stats, batch):
        x = normalize(batch["image"], setup.mean, setup.std)
        logits = setup.net.apply({"params": params, "batch_stats": batch_stats}, x, train=False)
        y, mask = batch["label"], batch["mask"]
        sums = {"loss": optax.softmax_cross_entropy_with_integer_labels(logits, y),
                **{f"top{k}": top_k_correct(logits, y, k) for k in setup.top_k}}
        return {name: totals[name] + jnp.sum(v * mask) for name, v in sums.items()}

    return jax.jit(accumulate, out_shardings=replicated(mesh))


def evaluate(evaluate_fn, setup: TrainSetup, state: TrainState, dataset, config, mesh) -> dict:
    """Test loss and accuracy (top-5 too with more than 10 classes) of ``state`` over the whole
    test split, in batches of ``config.batch_size`` (the last one padded and masked), read as
    ``config.data_pipeline`` says."""
    n = len(dataset.test)
    batches = padded_batches(n, config.batch_size, local_rows(config.batch_size, mesh))
    read = EvalReader(dataset.test, batches)
    local = (map(read, range(len(batches))) if config.data_pipeline == "memory"
             else loader(read, len(batches), config.data_threads, 0))
    keys = ("loss",) + tuple(f"top{k}" for k in setup.top_k)
    totals = jax.device_put({k: np.zeros((), np.float32) for k in keys}, replicated(mesh))
    for batch in local:
        totals = evaluate_fn(totals, state.params, state.batch_stats, to_global(batch, mesh))
    totals = {k: float(v) for k, v in jax.device_get(totals).items()}
    result = {"test_loss": totals["loss"] / n, "test_accuracy": totals["top1"] / n}
    if "top5" in totals:
        result["test_top5_accuracy"] = totals["top5"] / n
    return result


# ---------------------------------------------------------------------------------------------
# The run.


def train(config, genotype, workdir: str, allow_changes=()) -> TrainResult:
    """Trains (or resumes training) the network of ``genotype`` (a genotype, or what
    ``load_genotype`` reads: a genotype.json path, an arch or Genotype(...) string, a published
    name) as ``config`` says, in ``workdir``. ``allow_changes``: config fields that may differ
    from the workdir's saved config on resume. Everything is checked before anything is
    written."""
    if isinstance(genotype, (str, os.PathLike)):
        genotype = load_genotype(genotype)
    validate(config)
    dataset = open_data(config)
    setup = build(config, genotype, dataset.num_classes, dataset.image_shape, dataset.mean,
                  dataset.std, len(dataset.train))
    mesh = data_mesh()
    check_batch_size(config.batch_size, mesh)
    check_workdir(workdir)
    with locked(workdir):
        _claim_workdir(workdir, config, genotype, allow_changes)
        return _run(config, genotype, dataset, setup, workdir, mesh)


def _run(config, genotype, dataset, setup, workdir, mesh) -> TrainResult:
    params, macs = network_size(setup.net, dataset.image_shape)
    streamed = config.data_pipeline == "grain"
    checkpoints = Checkpoints(workdir, config.keep_checkpoints, with_data=streamed)
    state = resume(checkpoints, init_state(setup, config.seed), mesh)
    start, total = int(state.step), setup.total_steps
    seconds = float(state.seconds)

    step_fn, evaluate_fn = make_step(setup, mesh), make_evaluate(setup, mesh)
    streams = {"train": BatchStream(np.arange(len(dataset.train)), config.batch_size,
                                    config.seed)}
    read = StepReader(dataset.train, streams, {"train": 1}, local_rows(config.batch_size, mesh))
    batches = step_batches(read, start, total, config, checkpoints.restored_data)
    eval_period = config.eval_every * setup.steps_per_epoch
    writer = MetricsWriter(workdir, resume_step=start)
    progress = Progress(total, setup.steps_per_epoch, config.epochs, start)
    logger.info("Training %s: %s parameters, %s multiply-adds, %d steps of %d.", genotype,
                f"{params:,}", f"{macs:,}", total, config.batch_size)
    t0 = time.perf_counter()
    try:
        for step in range(start, total):
            batch = to_global(next(batches)["train"], mesh, batch_axis=1)
            with collector_paused():  # the first call traces and compiles
                state, metrics = step_fn(state, tree_index(batch, 0))
            done = step + 1
            if done % config.log_every == 0 or done == total:
                check_finite(state, checkpoints, _ADVICE)
                metrics = {k: float(v) for k, v in jax.device_get(metrics).items()}
                writer.write(done, metrics)
                progress.line(done, {"loss": metrics["train_loss"],
                                     "accuracy": metrics["train_accuracy"], "lr": metrics["lr"]})
            if eval_period and done % eval_period == 0 and done < total:
                _log_eval(writer, done, setup,
                          evaluate(evaluate_fn, setup, state, dataset, config, mesh))
            if done % config.checkpoint_every == 0 or done == total:
                check_finite(state, checkpoints, _ADVICE)
                state = state.replace(seconds=replicated_seconds(
                    seconds + time.perf_counter() - t0, mesh))
                checkpoints.save(done, state, batches.get_state() if streamed else None)
        result = evaluate(evaluate_fn, setup, state, dataset, config, mesh)
        if start < total:
            _log_eval(writer, total, setup, result)
    finally:
        batches.close()
        checkpoints.close()
        writer.close()
    if start < total:
        seconds += time.perf_counter() - t0
    report = {**result, "params": params, "macs": macs, "epochs": config.epochs,
              "epochs_done": total / setup.steps_per_epoch, "steps": total,
              "steps_per_epoch": setup.steps_per_epoch, "batch_size": config.batch_size,
              "dataset": config.dataset, "test_examples": len(dataset.test),
              "wall_time_s": seconds, "genotype": genotype.to_dict()}
    on_chief(_finish, workdir, genotype, report)
    return TrainResult(report, state)


def _log_eval(writer, step, setup, result):
    writer.write(step, result)
    logger.info("Test after epoch %.2f: %s.", step / setup.steps_per_epoch,
                ", ".join(f"{k[5:]} {v:.4f}" for k, v in result.items()))


def _claim_workdir(workdir: str, config, genotype, allow_changes) -> None:
    """Records ``config`` and ``genotype`` in ``workdir`` on the first run; refuses a later run
    of another genotype, or of another config beyond ``allow_changes``. Every process checks
    the genotype before ``claim_workdir``, where process 0 (which then writes it) waits for all."""
    path = os.path.join(workdir, "genotype.json")
    saved_before = os.path.exists(path)
    if saved_before:
        with open(path, encoding="utf-8") as f:
            saved = genotype_from_dict(json.load(f))
        if saved != genotype:
            raise ValueError(f"The workdir {workdir!r} trains the genotype {saved}, not "
                             f"{genotype}. Use a new --workdir, or pass --genotype={path} to "
                             "resume it.")
    claim_workdir(workdir, config, allow_changes)
    if not saved_before:
        on_chief(save_genotype, genotype, path)


def _finish(workdir: str, genotype, report: dict) -> None:
    """Writes ``report.json``, the training curves and the genotype drawing; prints the report
    (process 0 of a multi-process run)."""
    write_json(os.path.join(workdir, "report.json"), report)
    metrics = os.path.join(workdir, "metrics.jsonl")
    if os.path.exists(metrics):
        viz.plot_training_curves(metrics, os.path.join(workdir, "training_curves.png"))
    viz.save_genotype_figure(genotype, os.path.join(workdir, "genotype"))
    top5 = (f" (top-5 {100 * report['test_top5_accuracy']:.2f}%)"
            if "test_top5_accuracy" in report else "")
    print(f"genotype: {genotype}\n"
          f"test accuracy: {100 * report['test_accuracy']:.2f}%{top5}, test loss "
          f"{report['test_loss']:.4f} on {report['test_examples']} images\n"
          f"parameters: {report['params']:,} (without the auxiliary head), multiply-adds: "
          f"{report['macs']:,}\n"
          f"trained {report['epochs_done']:.2f} of {report['epochs']} epochs ({report['steps']} "
          f"steps) in {format_duration(report['wall_time_s'])}; report: "
          f"{os.path.join(workdir, 'report.json')}")
