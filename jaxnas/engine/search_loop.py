"""The search loop: one jitted step, data-parallel over every device, checkpointed and resumable.

``search(config, workdir)`` runs a whole search from a config (see ``experiments/configs``) and
writes to ``workdir``: ``checkpoints/``, ``metrics.jsonl``, TensorBoard events, and at the end
``genotype.json``, drawings of the derived cell(s) and a plot of the architecture weights over the
run. Re-running the same command resumes from the last complete checkpoint.

``config.data_pipeline`` picks how the data is read, as for retraining (``train_loop``): ``memory``
holds the whole set in host memory, ``grain`` streams it and saves the loader's state in each
checkpoint. Both give each step the same train and val batches (``StepReader``).
"""

import dataclasses
import os
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxnas import hypergrad as hg
from jaxnas import viz
from jaxnas.benchmarks import open_lookup
from jaxnas.data import (BatchStream, StepReader, check_batch_size, data_mesh, local_rows,
                         replicated, search_split, to_global)
from jaxnas.distributed import on_chief
from jaxnas.engine import config as config_lib
from jaxnas.engine.checkpoints import Checkpoints
from jaxnas.engine.evaluate import PathEvaluator
from jaxnas.engine.loop import (check_finite, collector_paused, first_nonfinite_step, open_data,
                                resume, step_batches, validate_data)
from jaxnas.engine.metrics import MetricsWriter, Progress, format_duration
from jaxnas.engine.optim import cosine_by_epoch, drop_path_by_epoch, weight_optimizer
from jaxnas.engine.stages import check_shrinking, read_kept, shrink_stage, stage_plan, write_kept
from jaxnas.engine.workdir import check_workdir, claim_workdir, locked, read_config
from jaxnas.files import write_json
from jaxnas.log import logger
from jaxnas.spaces import get_space, init_variables, load_genotype, save_genotype
from jaxnas.spaces.paths import path_genotype
from jaxnas.strategies import SearchProblem, SearchState, get_strategy
from jaxnas.strategies.shrinking import single_op_genotype
from jaxnas.trees import tree_index

# Config fields added after the first searches were saved, with the value that means "off".
ADDED_FIELDS = {"epoch_steps": 0, "stages": {}, "data_pipeline": "memory", "image_size": 0,
                "data_threads": 0, "data_workers": 0}

_ADVICE = ("Lower the learning rates and resume from the last good checkpoint with "
           "--allow_config_change=optim_w.lr,optim_alpha.lr (and the new values), or check the "
           "data.")


@dataclasses.dataclass
class SearchResult:
    genotype: object
    state: SearchState
    steps: int
    metrics: dict


@dataclasses.dataclass
class SearchSetup:
    """Everything a search is built from its config: data, space, strategy, problem, streams."""

    config: object
    dataset: object
    space: object
    strategy: object
    problem: SearchProblem
    streams: dict
    per_step: dict
    steps_per_epoch: int
    total_steps: int

    def initial_state(self) -> SearchState:
        return init_state(self.config.seed, self.strategy, self.space, self.problem,
                          self.dataset.image_shape, self.config.batch_size)


def validate(config) -> None:
    """Clear errors for config values a search cannot run with."""
    config_lib.require_positive(config, "batch_size", "epochs", "optim_w.lr", "log_every",
                                "checkpoint_every", "keep_checkpoints")
    config_lib.require_nonnegative(config, "optim_w.lr_min", "optim_w.weight_decay",
                                   "optim_w.momentum", "optim_w.grad_clip", "cutout", "max_steps",
                                   "epoch_steps", "eigenvalue_every", "drop_path", "num_classes")
    if config.optim_w.lr_min > config.optim_w.lr:
        raise ValueError(f"config.optim_w.lr_min ({config.optim_w.lr_min}) exceeds "
                         f"config.optim_w.lr ({config.optim_w.lr}).")
    if config.drop_path >= 1:
        raise ValueError(f"config.drop_path must be below 1, got {config.drop_path!r}.")
    validate_data(config)


def build(config) -> SearchSetup:
    """Validates ``config`` and builds the search it describes (nothing is run)."""
    validate(config)
    space = get_space(**config.space.to_dict())
    strategy = get_strategy(space=space, optim_alpha=config.optim_alpha.to_dict(),
                            **config.strategy.to_dict())
    if config.eigenvalue_every and not strategy.differentiable:
        raise ValueError(f"config.eigenvalue_every is {config.eigenvalue_every}, but the "
                         f"{strategy.name!r} strategy has no differentiable architecture "
                         "parameters; set it to 0.")
    dataset = open_data(config)
    train_idx, val_idx = search_split(len(dataset.train), config.train_portion, config.seed)
    streams = {"train": BatchStream(train_idx, config.batch_size, config.seed),
               "val": BatchStream(val_idx, config.batch_size, config.seed + 1)}
    per_step = {"train": strategy.train_batches, "val": strategy.val_batches}
    steps_per_epoch = streams["train"].steps_per_epoch // per_step["train"]
    if config.epoch_steps:  # short epochs, for quick runs
        steps_per_epoch = min(steps_per_epoch, config.epoch_steps)
    if steps_per_epoch == 0:
        raise ValueError(f"One step needs {per_step['train']} train batches of "
                         f"{config.batch_size}, but the train half has only {len(train_idx)} "
                         "examples; lower the batch size.")
    planned_steps = config.epochs * steps_per_epoch
    total_steps = planned_steps + strategy.extra_steps
    total_steps = min(total_steps, config.max_steps) if config.max_steps else total_steps
    updates_per_epoch = steps_per_epoch * per_step["train"]
    schedule = cosine_by_epoch(config.optim_w.lr, config.optim_w.lr_min, config.epochs,
                               updates_per_epoch)
    drop_path = (drop_path_by_epoch(config.drop_path, config.epochs, updates_per_epoch)
                 if config.drop_path else None)
    net = space.supernet(dataset.num_classes, drop_path=bool(drop_path),
                         single_path=strategy.single_path)
    problem = SearchProblem(net, dataset.mean, dataset.std, config.augment, config.cutout,
                            weight_optimizer(config.optim_w, schedule), schedule, planned_steps,
                            config.aux_weight, config.optim_w.momentum,
                            config.optim_w.weight_decay, drop_path, config.epochs)
    return SearchSetup(config, dataset, space, strategy, problem, streams, per_step,
                       steps_per_epoch, total_steps)


def load_search(workdir: str):
    """The setup of the search in ``workdir`` (from its ``config.json``) and its newest restorable
    state: ``(setup, state)``. For analysing a search after (or while) it runs."""
    saved = read_config(workdir)
    if saved is None:
        raise FileNotFoundError(f"{workdir!r} holds no search (no config.json); pass the "
                                "--workdir of a search.")
    saved.pop("history", None)
    for field, default in ADDED_FIELDS.items():  # a run saved before jaxnas had the field
        saved.setdefault(field, default)
    config = ml_collections.ConfigDict(saved)
    setup = build(config)
    checkpoints = Checkpoints(workdir, config.keep_checkpoints,
                              with_data=config.data_pipeline == "grain")
    state = checkpoints.restore_latest(setup.initial_state())
    if state is None:
        raise FileNotFoundError(f"The search in {workdir!r} has no checkpoint yet.")
    return setup, state


def search(config, workdir: str, allow_changes=()) -> SearchResult:
    """Runs (or resumes) the search of ``config`` in ``workdir``: one supernet, or the stages of
    ``config.stages`` (``jaxnas.engine.stages``). ``allow_changes``: config fields that may
    differ from the workdir's saved config on resume (see ``jaxnas.engine.workdir``). Everything
    is checked before anything is written."""
    plan = stage_plan(config)
    setup = build(plan.config(config, 0, None) if plan else config)
    if plan:
        check_shrinking(plan, setup.space.arch_shapes())
    mesh = data_mesh()
    check_batch_size(config.batch_size, mesh)
    lookup = open_lookup(config.nb201_table, setup.space)
    check_workdir(workdir)
    with locked(workdir):
        claim_workdir(workdir, config, allow_changes)
        if plan:
            return _run_stages(plan, config, workdir, mesh, allow_changes)
        return _run(setup, workdir, mesh, lookup)


def _run_stages(plan, config, workdir, mesh, allow_changes) -> SearchResult:
    """Runs the stages not yet over, each resumed from its own checkpoints, until the last or
    until ``config.max_steps`` (all stages together) is spent; then writes the final genotype
    (``stages.final``) to ``workdir``. Returns the last stage run's result, with the final
    genotype and the steps of all stages."""
    edge_ops, done, records, result = None, 0, [], None
    # A stage's config has no `stages` field: changes to it are the top config's to allow.
    stage_changes = [a for a in allow_changes if a.split(".")[0] != "stages"]
    for k in range(plan.count):
        stage_dir = os.path.join(workdir, f"stage{k}")
        record = read_kept(stage_dir)
        if record is None:
            stage_config = plan.config(config, k, edge_ops)
            if config.max_steps:
                stage_config.max_steps = config.max_steps - done
                if stage_config.max_steps <= 0:
                    logger.info("max_steps (%d) is spent before stage %d; rerun with a larger "
                                "one to continue.", config.max_steps, k + 1)
                    return result or _stage_result(os.path.join(workdir, f"stage{k - 1}"), done)
            setup = build(stage_config)
            logger.info("Stage %d of %d in %s: %s.", k + 1, plan.count, stage_dir, ", ".join(
                f"{shape[1]} {kind} operations per edge"
                for kind, shape in setup.space.arch_shapes().items()))
            claim_workdir(stage_dir, stage_config, stage_changes)
            result = _run(setup, stage_dir, mesh, open_lookup(config.nb201_table, setup.space))
            if result.steps < setup.problem.planned_steps:
                logger.info("Stopped in stage %d after %d of its %d steps (max_steps); rerun "
                            "to continue.", k + 1, result.steps, setup.problem.planned_steps)
                return result
            weights = jax.device_get(setup.strategy.arch_weights(result.state.arch))
            kept = shrink_stage(plan, k, setup.space.cell_ops(), weights)
            record = write_kept(stage_dir, kept, result.steps, result.genotype)
        edge_ops, done = record["kept"], done + record["steps"]
        records.append({"stage": k, **record})
    last = os.path.join(workdir, f"stage{plan.count - 1}")
    result = result or _stage_result(last, done)  # every stage was over already
    if plan.final == "single":
        space = get_space(**plan.config(config, 0, None).space.to_dict())
        genotype = single_op_genotype(edge_ops, space.edge_list)
    else:
        genotype = load_genotype(os.path.join(last, "genotype.json"))
    on_chief(_write_genotype, workdir, genotype, f" after {plan.count} stages",
             strategy=config.strategy.name, step=done, stages=records)
    return dataclasses.replace(result, genotype=genotype, steps=done)


def _stage_result(stage_dir: str, steps: int) -> SearchResult:
    """The result of a stage that ran in an earlier invocation, from its workdir."""
    return SearchResult(load_genotype(os.path.join(stage_dir, "genotype.json")),
                        load_search(stage_dir)[1], steps, {})


def _run(setup, workdir, mesh, lookup) -> SearchResult:
    config, dataset, strategy, space = setup.config, setup.dataset, setup.strategy, setup.space
    problem, per_step, total_steps = setup.problem, setup.per_step, setup.total_steps
    streamed = config.data_pipeline == "grain"
    checkpoints = Checkpoints(workdir, config.keep_checkpoints, with_data=streamed)
    state = resume(checkpoints, setup.initial_state(), mesh)
    start = int(state.step)
    read = StepReader(dataset.train, setup.streams, per_step,
                      local_rows(config.batch_size, mesh))
    batches = step_batches(read, start, total_steps, config, checkpoints.restored_data)

    step_fn = make_step(strategy, problem, per_step, mesh)
    writer = MetricsWriter(workdir, resume_step=start)
    progress = Progress(total_steps, setup.steps_per_epoch, config.epochs, start)
    eigen_fn = make_eigenvalue(strategy, problem, config) if config.eigenvalue_every else None
    metrics = {}
    t0 = time.perf_counter()
    try:
        for step in range(start, total_steps):
            batch = to_global(next(batches), mesh, batch_axis=1)
            with collector_paused():  # the first calls trace and compile
                state, metrics = step_fn(state, batch)
            done = step + 1
            if eigen_fn is not None and done % config.eigenvalue_every == 0:
                with collector_paused():
                    value = eigen_fn(state, batch["val"])
                writer.write(done, {"alpha_hessian_eigenvalue": value})
            if done % config.log_every == 0 or done == total_steps:
                check_finite(state, checkpoints, _ADVICE)
                metrics = _log(writer, progress, strategy, space, lookup, state, metrics, done)
            if done % config.checkpoint_every == 0 or done == total_steps:
                check_finite(state, checkpoints, _ADVICE)
                checkpoints.save(done, state, batches.get_state() if streamed else None)
    finally:
        batches.close()
        checkpoints.close()
        writer.close()
    if start < total_steps:
        logger.info("Search of %d steps took %s.", total_steps - start,
                    format_duration(time.perf_counter() - t0))
    genotype = finish(workdir, setup, state, lookup, total_steps)
    return SearchResult(genotype, state, total_steps,
                        {k: float(v) for k, v in jax.device_get(metrics).items()})


def init_state(seed: int, strategy, space, problem: SearchProblem, image_shape,
               batch_size: int = 1) -> SearchState:
    """The search state at step 0 (weights drawn by ``init_variables``, the architecture state
    by the strategy, sized for batches of ``batch_size`` images; the network is built in
    training mode, so a supernet's auxiliary tower has its weights)."""
    key = jax.random.PRNGKey(seed)
    k_net, k_arch, k_run = jax.random.split(key, 3)
    arch = strategy.init_data(strategy.init(k_arch, space.arch_shapes()),
                              (batch_size,) + tuple(image_shape))
    x = jnp.zeros((1,) + tuple(image_shape), jnp.float32)
    variables = init_variables(problem.plain_net, k_net, x, strategy.arch_weights(arch),
                               train=True)
    params = variables["params"]
    return SearchState(
        step=jnp.zeros((), jnp.int32), params=params,
        batch_stats=variables.get("batch_stats", {}), opt_w=problem.tx_w.init(params),
        arch=arch, rng=k_run,
        data_position={"train": jnp.zeros((), jnp.int32), "val": jnp.zeros((), jnp.int32)},
        nonfinite_step=jnp.full((), -1, jnp.int32))


def make_step(strategy, problem, per_step, mesh):
    """The jitted search step: the strategy's step plus the engine's bookkeeping (data position,
    the first non-finite step). Compiled once per run; the old state's buffers are donated."""

    def step(state, batches):
        new, metrics = strategy.step(state, batches, problem)
        position = {k: v + per_step[k] for k, v in state.data_position.items()}
        return new.replace(data_position=position,
                           nonfinite_step=first_nonfinite_step(state, new, metrics)), metrics

    rep = replicated(mesh)
    return jax.jit(step, out_shardings=(rep, rep), donate_argnums=0)


def make_eigenvalue(strategy, problem, config):
    """state, val batches -> the dominant eigenvalue of the alpha-Hessian of the val loss."""

    @jax.jit
    def eigenvalue(state, val):
        loss, alpha = strategy.hessian_target(state, tree_index(val, 0), problem)
        value, _, _ = hg.top_hessian_eigenvalue(loss, alpha,
                                                key=jax.random.fold_in(state.rng, state.step),
                                                iters=config.eigenvalue_iters)
        return value

    return eigenvalue


def _log(writer, progress, strategy, space, lookup, state, metrics, step):
    metrics = {k: float(v) for k, v in jax.device_get(metrics).items()}
    weights = jax.device_get(strategy.arch_weights(state.arch))
    genotype = strategy.derive(state.arch, space)
    scalars = dict(metrics)
    fields = {k: metrics[k] for k in ("train_loss", "train_accuracy", "val_loss",
                                      "val_accuracy") if k in metrics}
    if lookup is not None:
        scalars.update(lookup.scores(genotype))
        fields[lookup.headline] = scalars[lookup.headline]
    writer.write(step, scalars, arch_weights={k: np.asarray(v).tolist()
                                              for k, v in weights.items()},
                 genotype=str(genotype))
    progress.line(step, fields)
    return scalars


def finish(workdir, setup, state, lookup, steps):
    """Selects the final genotype (the strategy's derivation, or its selection by evaluating
    candidates; every process of a multi-process run takes part) and writes (process 0)
    ``genotype.json``, ``selection.json`` (the scored candidates, when the strategy selects), the
    cell drawing, the weight plot and the strategy's own figures."""
    strategy = setup.strategy
    weights = jax.device_get(strategy.arch_weights(state.arch))
    genotype, record = strategy.select(state, setup.space, PathEvaluator(setup, state),
                                       setup.config.seed)
    on_chief(_write_results, workdir, setup.space, strategy, weights, genotype, record, lookup,
             steps)
    on_chief(strategy.write_files, state, workdir)
    return genotype


def _write_results(workdir, space, strategy, weights, genotype, record, lookup, steps):
    """``finish``'s files, from the final architecture ``weights`` and ``genotype`` and the
    selection ``record`` (None when the strategy derives without scoring)."""
    extra = {"strategy": strategy.name, "step": steps,
             "arch_weights": {k: np.asarray(v).tolist() for k, v in weights.items()}}
    if record is not None:
        extra["selection"] = _write_selection(workdir, space, record, lookup)
    if lookup is not None:
        extra.update(lookup.record(genotype))
        logger.info(lookup.describe(genotype))
    metrics_path = os.path.join(workdir, "metrics.jsonl")
    history = viz.load_arch_weight_history(metrics_path)
    if history:
        viz.plot_arch_weights(history, os.path.join(workdir, "arch_weights.png"),
                              space.cell_ops())
    strategy.write_figures(metrics_path, workdir)
    _write_genotype(workdir, genotype, "", **extra)


def _write_genotype(workdir, genotype, when: str, **extra):
    """Writes ``genotype.json`` (with ``extra``) and the cell drawing; logs and prints the
    genotype (``when``: what the log line says after "Derived genotype")."""
    path = os.path.join(workdir, "genotype.json")
    save_genotype(genotype, path, **extra)
    viz.save_genotype_figure(genotype, os.path.join(workdir, "genotype"))
    logger.info("Derived genotype%s: %s (written to %s).", when, genotype, path)
    print(f"genotype: {genotype}")


def _write_selection(workdir, space, record, lookup) -> dict:
    """Writes every scored candidate (genotype, val accuracy, and the benchmark's scores when a
    lookup is open) to ``selection.json``; returns the summary that ``genotype.json`` keeps."""
    candidates = []
    for path, score in zip(record.paths, record.scores):
        genotype = path_genotype(space, path)
        entry = {"genotype": str(genotype), record.metric: float(score)}
        if lookup is not None:
            entry.update(lookup.scores(genotype))
        candidates.append(entry)
    write_json(os.path.join(workdir, "selection.json"), {"candidates": candidates})
    logger.info("Selected by scoring %d candidates: %s %.2f%% with the supernet's weights.",
                len(candidates), record.metric, record.best_score)
    return {"candidates": len(candidates), record.metric: float(record.best_score)}
