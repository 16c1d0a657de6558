"""Training the graph VAE on the cells of a search space, and loading a trained one.

``train_vae(config, workdir)`` trains the DVAE of ``config`` with Adam on the loss
``nll + kl_weight * kl`` (one jitted step) on the cells of ``config.space``
(``jaxnas.vae.codecs``): all 15,625 NAS-Bench-201 cells (``experiments/configs/vae_nb201.py``),
or ``config.cells`` DARTS cells drawn uniformly from the seed (``vae_darts.py``; the space has
about 10^9), checked on ``config.eval_cells`` other draws. It writes to ``workdir``:
``checkpoints/`` (orbax, through ``jaxnas.engine.checkpoints``), ``config.json``,
``metrics.jsonl`` (the loss terms of the logged steps; the injectivity figures every
``eval_every`` epochs), TensorBoard events and ``report.json`` (the injectivity check of the final
VAE, the share of prior draws that decode to valid cells, sizes and times). Re-running the same
command resumes from the last complete checkpoint, bit-exact: the cells, the batch and the key of
a step are functions of the seed and the step.

``load_vae(workdir)`` gives back ``(DVAE, params)`` for a search.

This module uses the engine's checkpoints, workdir and logging, so it sits beside the engine:
strategies import ``jaxnas.vae`` and receive the loaded VAE, or import ``load_vae`` inside the
function that needs it.
"""

import os
import time
from typing import Any, Mapping

import flax
import jax
import numpy as np
import optax

from jaxnas.data import (BatchStream, check_batch_size, data_mesh, local_rows, replicated,
                         to_global)
from jaxnas.distributed import on_chief
from jaxnas.engine import config as config_lib
from jaxnas.engine.checkpoints import Checkpoints
from jaxnas.engine.loop import check_finite, first_nonfinite_step, replicated_seconds, resume
from jaxnas.engine.metrics import MetricsWriter, Progress, format_duration
from jaxnas.engine.workdir import check_workdir, claim_workdir, locked, read_config
from jaxnas.files import write_json
from jaxnas.log import logger
from jaxnas.vae.codecs import CellCodec, codec_for
from jaxnas.vae.dag import NB201_NUM_CELLS, Dag
from jaxnas.vae.evaluate import decode_prior, injectivity
from jaxnas.vae.model import DVAE, init_params

_ADVICE = ("Lower the learning rate and resume from the last good checkpoint with "
           "--allow_config_change=lr (and the new value).")
_FAILURES_LISTED = 20
_TRAIN_CELLS, _EVAL_CELLS = 1, 2  # fold_in streams of the seed for the sampled cells


class VAEState(flax.struct.PyTreeNode):
    """The whole state of a VAE run. ``nonfinite_step``: the first step whose loss or state was
    NaN or infinite (-1: none yet); ``seconds``: training wall time as of the last checkpoint.
    The data position is ``step``."""

    step: jax.Array
    params: Any
    opt: Any
    rng: jax.Array
    nonfinite_step: jax.Array
    seconds: jax.Array


def make_vae(space: str, model: Mapping) -> DVAE:
    """The DVAE for the cells of ``space`` with the sizes of ``model`` (config.model)."""
    try:
        codec = codec_for(space)
    except ValueError as e:
        raise ValueError(f"config.space: {e}") from None
    try:
        return DVAE(num_ops=codec.num_ops, num_vertices=codec.num_vertices, **dict(model))
    except ValueError as e:
        raise ValueError(f"config.model: {e}") from None


def _sampled(config) -> bool:
    """Whether the cells of ``config.space`` are drawn (``config.cells``) rather than all."""
    return config["space"] != "nb201"


def num_cells(config) -> int:
    """How many cells an epoch of ``config`` (a config or its dict) goes through."""
    return config["cells"] if _sampled(config) else NB201_NUM_CELLS


def cell_sets(config) -> tuple[CellCodec, np.ndarray, np.ndarray]:
    """``(codec, training cells, checked cells)``, path cells int32 [C, E]: all NB201 cells
    (both), or two sets of DARTS cells drawn from the seed, the checked ones distinct and none
    of them a training cell (so up to ``config.eval_cells``)."""
    codec = codec_for(config.space)
    if not _sampled(config):
        cells = codec.all_cells()
        return codec, cells, cells
    seed = jax.random.PRNGKey(config.seed)
    train = codec.sample_cells(jax.random.fold_in(seed, _TRAIN_CELLS), config.cells)
    drawn = codec.sample_cells(jax.random.fold_in(seed, _EVAL_CELLS), config.eval_cells)
    seen, keep = {row.tobytes() for row in train}, []
    for i, row in enumerate(drawn):
        if row.tobytes() not in seen:
            seen.add(row.tobytes())
            keep.append(i)
    return codec, train, drawn[keep]


def validate(config) -> None:
    """Clear errors for config values a VAE run cannot use."""
    config_lib.require_positive(config, "batch_size", "epochs", "lr", "log_every",
                                "checkpoint_every", "keep_checkpoints")
    config_lib.require_nonnegative(config, "kl_weight", "max_steps", "eval_every",
                                   "prior_samples")
    make_vae(config.space, config.model)
    if _sampled(config):
        for field in ("cells", "eval_cells"):
            if field not in config:
                raise ValueError(f"config.{field} is missing: a VAE of {config.space} cells "
                                 "trains on drawn cells; start from "
                                 "experiments/configs/vae_darts.py.")
        config_lib.require_positive(config, "cells", "eval_cells")
    if config.batch_size > num_cells(config):
        raise ValueError(f"config.batch_size ({config.batch_size}) exceeds the "
                         f"{num_cells(config)} cells the VAE trains on; lower it.")


def schedule(config) -> tuple[int, int]:
    """``(steps_per_epoch, steps of all epochs)`` of ``config`` (a config or its dict)."""
    steps_per_epoch = num_cells(config) // config["batch_size"]
    return steps_per_epoch, config["epochs"] * steps_per_epoch


def _keys(seed: int):
    """``(init, run, prior)`` keys of a run."""
    return jax.random.split(jax.random.PRNGKey(seed), 3)


def init_state(vae: DVAE, tx: optax.GradientTransformation, seed: int) -> VAEState:
    k_init, k_run, _ = _keys(seed)
    params = init_params(vae, k_init)
    return VAEState(step=np.zeros((), np.int32), params=params, opt=tx.init(params), rng=k_run,
                    nonfinite_step=np.full((), -1, np.int32), seconds=np.zeros((), np.float32))


def make_step(vae: DVAE, tx: optax.GradientTransformation, kl_weight: float, mesh):
    """The jitted training step ``(state, batch) -> (state, metrics)``, batch a ``Dag`` of
    [B, N] / [B, N, N] sharded over ``mesh``; the old state's buffers are donated."""

    def step(state, batch):
        key = jax.random.fold_in(state.rng, state.step)

        def loss_fn(params):
            terms = vae.apply({"params": params}, batch, key, method=DVAE.elbo)
            return terms.loss(kl_weight), terms

        (loss, terms), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
        updates, opt = tx.update(grads, state.opt, state.params)
        new = state.replace(step=state.step + 1, params=optax.apply_updates(state.params, updates),
                            opt=opt)
        metrics = {"loss": loss, "nll": terms.nll.mean(), "kl": terms.kl.mean(),
                   "neg_elbo": terms.loss()}
        return new.replace(nonfinite_step=first_nonfinite_step(state, new, metrics)), metrics

    rep = replicated(mesh)
    return jax.jit(step, out_shardings=(rep, rep), donate_argnums=0)


def train_vae(config, workdir: str, allow_changes=()) -> dict:
    """Trains (or resumes training) the VAE of ``config`` in ``workdir`` and returns its
    report. ``allow_changes``: config fields that may differ from the workdir's saved config on
    resume. Everything is checked before anything is written."""
    validate(config)
    mesh = data_mesh()
    check_batch_size(config.batch_size, mesh)
    check_workdir(workdir)
    with locked(workdir):
        claim_workdir(workdir, config, allow_changes)
        return _run(config, workdir, mesh)


def _evaluate(vae, params, codec: CellCodec, cells, config) -> dict:
    """The injectivity figures over ``cells`` and the share of prior draws that decode to
    cells."""
    figures = injectivity(vae, params, codec.dags(cells))
    failures = [codec.describe(cells[i]) for i in figures.pop("failures")[:_FAILURES_LISTED]]
    if config.prior_samples:
        prior = decode_prior(vae, params, _keys(config.seed)[2], config.prior_samples)
        valid = [codec.problem(Dag(t, a)) is None for t, a in zip(prior.types, prior.adj)]
        figures["prior_valid_fraction"] = float(np.mean(valid))
    return {**figures, "failures": failures}


def _run(config, workdir: str, mesh) -> dict:
    vae, tx = make_vae(config.space, config.model), optax.adam(config.lr)
    codec, train_cells, eval_cells = cell_sets(config)
    dags, eval_dags = codec.dags(train_cells), codec.dags(eval_cells)
    checked = "all" if eval_cells is train_cells else "held-out"
    steps_per_epoch, total = schedule(config)
    total = min(total, config.max_steps) if config.max_steps else total
    stream = BatchStream(np.arange(len(dags.types)), config.batch_size, config.seed)
    checkpoints = Checkpoints(workdir, config.keep_checkpoints)
    state = resume(checkpoints, init_state(vae, tx, config.seed), mesh)
    start, seconds = int(state.step), float(state.seconds)
    params_count = sum(x.size for x in jax.tree.leaves(state.params))
    step_fn = make_step(vae, tx, config.kl_weight, mesh)
    writer = MetricsWriter(workdir, resume_step=start)
    progress = Progress(total, steps_per_epoch, config.epochs, start)
    eval_period = config.eval_every * steps_per_epoch
    logger.info("Training the graph VAE (hidden %d, latent %d, %s parameters) on %d %s cells: "
                "%d steps of %d.", vae.hidden, vae.latent, f"{params_count:,}",
                len(dags.types), codec.name, total, config.batch_size)
    t0 = time.perf_counter()
    try:
        for step in range(start, total):
            rows = stream.batch(step)[local_rows(config.batch_size)]
            batch = to_global(Dag(dags.types[rows], dags.adj[rows]), mesh)
            state, metrics = step_fn(state, batch)
            done = step + 1
            if done % config.log_every == 0 or done == total:
                check_finite(state, checkpoints, _ADVICE)
                metrics = {k: float(v) for k, v in jax.device_get(metrics).items()}
                writer.write(done, metrics)
                progress.line(done, {k: metrics[k] for k in ("loss", "nll", "kl")})
            if eval_period and done % eval_period == 0 and done < total:
                figures = injectivity(vae, state.params, eval_dags)
                figures.pop("failures")
                writer.write(done, figures)
                logger.info("After epoch %d: %d of %d cells (%s) decode to themselves, %d "
                            "distinct means.", done // steps_per_epoch, figures["reconstructed"],
                            figures["cells"], checked, figures["distinct_means"])
            if done % config.checkpoint_every == 0 or done == total:
                check_finite(state, checkpoints, _ADVICE)
                state = state.replace(seconds=replicated_seconds(
                    seconds + time.perf_counter() - t0, mesh))
                checkpoints.save(done, state)
    finally:
        checkpoints.close()
        writer.close()
    if start < total:
        seconds += time.perf_counter() - t0
    t_eval = time.perf_counter()
    report = _evaluate(vae, state.params, codec, eval_cells, config)
    report.update(
        space=codec.name, checked_cells=checked, training_cells=len(train_cells),
        params=params_count, epochs=config.epochs, epochs_done=total / steps_per_epoch,
        steps=total, steps_per_epoch=steps_per_epoch, batch_size=config.batch_size,
        wall_time_s=seconds, seconds_per_epoch=seconds * steps_per_epoch / total,
        evaluation_time_s=time.perf_counter() - t_eval)
    on_chief(write_json, os.path.join(workdir, "report.json"), report)
    print(f"graph VAE: {report['reconstructed']} of {report['cells']} {codec.name} cells "
          f"({checked}, {100 * report['reconstructed_fraction']:.2f}%) decode to themselves "
          f"from their mean; {report['distinct_means']} distinct means (closest two "
          f"{report['min_mean_distance']:.3g} apart)"
          + (f"; {100 * report['prior_valid_fraction']:.1f}% of {config.prior_samples} prior "
             "draws decode to cells" if config.prior_samples else "")
          + f"\ntrained {report['epochs_done']:.2f} of {config.epochs} epochs ({total} steps) "
          f"in {format_duration(seconds)}; report: {os.path.join(workdir, 'report.json')}")
    return report


def load_vae(workdir: str) -> tuple[DVAE, Any]:
    """``(DVAE, params)`` of the VAE trained in ``workdir`` (its newest complete checkpoint); a
    warning if its run has not finished."""
    saved = read_config(workdir)
    if saved is None:
        raise FileNotFoundError(f"{workdir!r} holds no VAE run (no config.json); train one with "
                                f"python -m experiments.train_vae --workdir={workdir}.")
    vae = make_vae(saved["space"], saved["model"])
    template = jax.eval_shape(lambda: init_state(vae, optax.adam(saved["lr"]), saved["seed"]))
    checkpoints = Checkpoints(workdir, saved["keep_checkpoints"])
    try:
        state = checkpoints.restore_latest(template)
    finally:
        checkpoints.close()
    if state is None:
        raise FileNotFoundError(f"{workdir!r} holds no complete VAE checkpoint; run "
                                f"python -m experiments.train_vae --workdir={workdir} (with its "
                                "config) to train it.")
    total = schedule(saved)[1]
    if int(state.step) < total:
        logger.warning("The VAE in %s is trained for %d of the %d steps of its %d epochs; run "
                       "python -m experiments.train_vae on it to finish training.", workdir,
                       int(state.step), total, saved["epochs"])
    return vae, state.params
