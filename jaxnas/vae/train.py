"""Training the graph VAE on every NAS-Bench-201 cell, and loading a trained one.

``train_vae(config, workdir)`` trains the DVAE of ``config`` (see
``experiments/configs/vae_nb201.py``) on all 15,625 NB201 cells with Adam on the loss
``nll + kl_weight * kl`` (one jitted step), and writes to ``workdir``: ``checkpoints/`` (orbax,
through ``jaxnas.engine.checkpoints``), ``config.json``, ``metrics.jsonl`` (the loss terms of the
logged steps; the injectivity figures every ``eval_every`` epochs), TensorBoard events and
``report.json`` (the injectivity check of the final VAE, the share of prior draws that decode to
valid cells, sizes and times). Re-running the same command resumes from the last complete
checkpoint, bit-exact: the batch and the key of a step are functions of the seed and the step.

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
from jaxnas.spaces.ops import NB201_OPS
from jaxnas.vae.dag import (NB201_NUM_CELLS, NB201_NUM_VERTICES, Dag, nb201_cells, nb201_dags,
                            nb201_problem)
from jaxnas.vae.evaluate import decode_prior, injectivity
from jaxnas.vae.model import DVAE, init_params

_ADVICE = ("Lower the learning rate and resume from the last good checkpoint with "
           "--allow_config_change=lr (and the new value).")
_FAILURES_LISTED = 20


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
    if space != "nb201":
        raise ValueError(f"config.space is {space!r}; the VAE trains on NAS-Bench-201 cells "
                         "only: set it to 'nb201'.")
    try:
        return DVAE(num_ops=len(NB201_OPS), num_vertices=NB201_NUM_VERTICES, **dict(model))
    except ValueError as e:
        raise ValueError(f"config.model: {e}") from None


def validate(config) -> None:
    """Clear errors for config values a VAE run cannot use."""
    config_lib.require_positive(config, "batch_size", "epochs", "lr", "log_every",
                                "checkpoint_every", "keep_checkpoints")
    config_lib.require_nonnegative(config, "kl_weight", "max_steps", "eval_every",
                                   "prior_samples")
    make_vae(config.space, config.model)
    if config.batch_size > NB201_NUM_CELLS:
        raise ValueError(f"config.batch_size ({config.batch_size}) exceeds the "
                         f"{NB201_NUM_CELLS} NB201 cells the VAE trains on; lower it.")


def schedule(config) -> tuple[int, int]:
    """``(steps_per_epoch, steps of all epochs)`` of ``config`` (a config or its dict)."""
    steps_per_epoch = NB201_NUM_CELLS // config["batch_size"]
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


def _evaluate(vae, params, dags, config) -> dict:
    """The injectivity figures over ``dags`` and the share of prior draws that decode to NB201
    cells."""
    figures = injectivity(vae, params, dags)
    names = nb201_cells()
    failures = [names[i].arch_str for i in figures.pop("failures")[:_FAILURES_LISTED]]
    if config.prior_samples:
        prior = decode_prior(vae, params, _keys(config.seed)[2], config.prior_samples)
        valid = [nb201_problem(Dag(t, a)) is None for t, a in zip(prior.types, prior.adj)]
        figures["prior_valid_fraction"] = float(np.mean(valid))
    return {**figures, "failures": failures}


def _run(config, workdir: str, mesh) -> dict:
    vae, tx = make_vae(config.space, config.model), optax.adam(config.lr)
    dags = nb201_dags()
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
    logger.info("Training the graph VAE (hidden %d, latent %d, %s parameters) on %d NB201 cells: "
                "%d steps of %d.", vae.hidden, vae.latent, f"{params_count:,}",
                len(dags.types), total, config.batch_size)
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
                figures = injectivity(vae, state.params, dags)
                figures.pop("failures")
                writer.write(done, figures)
                logger.info("After epoch %d: %d of %d cells decode to themselves, %d distinct "
                            "means.", done // steps_per_epoch, figures["reconstructed"],
                            figures["cells"], figures["distinct_means"])
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
    report = _evaluate(vae, state.params, dags, config)
    report.update(
        params=params_count, epochs=config.epochs, epochs_done=total / steps_per_epoch,
        steps=total, steps_per_epoch=steps_per_epoch, batch_size=config.batch_size,
        wall_time_s=seconds, seconds_per_epoch=seconds * steps_per_epoch / total,
        evaluation_time_s=time.perf_counter() - t_eval)
    on_chief(write_json, os.path.join(workdir, "report.json"), report)
    print(f"graph VAE: {report['reconstructed']} of {report['cells']} NB201 cells "
          f"({100 * report['reconstructed_fraction']:.2f}%) decode to themselves from their "
          f"mean; {report['distinct_means']} distinct means (closest two "
          f"{report['min_mean_distance']:.3g} apart)"
          + (f"; {100 * report['prior_valid_fraction']:.1f}% of {config.prior_samples} prior "
             "draws decode to NB201 cells" if config.prior_samples else "")
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
