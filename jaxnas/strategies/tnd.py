"""TND-NAS (Lyu et al., spec 000): the architecture moves by REINFORCE on a reward that need not
be differentiable, the accuracy of sampled cells times a penalty on their cost.

Per step (the cleaned-up Algorithm 2): from epoch ``warmup_epochs`` on, M paths (one operation
per edge of each cell kind) are drawn from ``softmax(logits)``, each is evaluated on one shared
val batch with the supernet's weights (single-path forwards, batch norm on the batch's own
statistics, nothing updated), its reward is Eq. 9 ``Acc * (Params / P)^beta`` (or Eq. 10 with
the multiply-adds as the second cost) with Params the parameter count of the sampled cell's
evaluation network (``eval_C`` channels, ``eval_layers`` cells, no auxiliary head: A7), and the
logits take one step of ``reinforce.reinforce_update``; then one weight step on a train batch
with the softmax mixture, the logits constant. The stages and the shrinking of the operations
are the engine's (``config.stages``, ``jaxnas.engine.stages``).
"""

import dataclasses
import os
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jaxnas import viz
from jaxnas.analysis.supernet_ranking import make_correct_count
from jaxnas.files import read_jsonl
from jaxnas.spaces.costs import cached_cost_tables
from jaxnas.strategies import reinforce
from jaxnas.strategies.base import Strategy, step_key
from jaxnas.strategies.options import check_choice, check_integer
from jaxnas.strategies.rewards import CostTerm, Reward

BASELINES = ("ema", "none")
_LAST = ("reward_mean", "reward_max", "params_mean", "sample_accuracy_mean",
         "sample_accuracy_max", "argmax_accuracy", "baseline", "policy_grad_norm")
_FIGURE = ("reward_mean", "reward_max", "params_mean", "sample_accuracy_max", "argmax_accuracy")


class TNDState(NamedTuple):
    """Attributes: policy: the logits ``{kind: [E, K]}``, their optimizer state and baseline;
    updates: architecture updates so far (int32); last: the metrics of the last one."""

    policy: reinforce.ReinforceState
    updates: jax.Array
    last: dict


@dataclasses.dataclass(frozen=True)
class TNDSearch(Strategy):
    """Attributes: space: the stage's search space; rule: the logits' update rule
    (``reinforce.reinforce_optimizer``); reward: ``rewards.Reward`` over the costs "params"
    and "macs"; num_samples: M; warmup_epochs: epochs of weight steps alone; baseline_step:
    the EMA baseline's step (None: no baseline, the literal Eq. 8); eval_C, eval_layers: the
    evaluation network whose costs the reward counts; init_scale: logits ~ init_scale N(0, 1)."""

    space: Any
    rule: Any
    reward: Reward
    num_samples: int = 10
    warmup_epochs: int = 10
    baseline_step: float | None = 0.95
    eval_C: int = 24
    eval_layers: int = 20
    init_scale: float = 1e-3

    name = "tnd"

    def init(self, key, arch_shapes):
        keys = jax.random.split(key, len(arch_shapes))
        logits = {kind: self.init_scale * jax.random.normal(k, shape)
                  for k, (kind, shape) in zip(keys, sorted(arch_shapes.items()))}
        last = {name: jnp.zeros((), jnp.float32) for name in _LAST}
        return TNDState(reinforce.init_reinforce(logits, self.rule), jnp.zeros((), jnp.int32),
                        last)

    def arch_weights(self, arch, key=None):
        """softmax(logits); with a key, a one-hot sample of the policy."""
        logits = arch.policy.logits
        if key is None:
            return {kind: jax.nn.softmax(x, axis=-1) for kind, x in logits.items()}
        path = reinforce.sample_paths(key, logits, 1)
        return {kind: jax.nn.one_hot(path[kind][0], logits[kind].shape[-1]) for kind in logits}

    def step(self, state, batches, problem):
        arch = state.arch
        move = problem.epoch(state.step) >= self.warmup_epochs
        arch = jax.lax.cond(move, lambda: self._move(state, batches["val"], problem),
                            lambda: arch)
        x = problem.images(step_key(state, 0), batches["train"]["image"][0])
        weights = self.arch_weights(arch)
        result = problem.weight_step(state.params, state.batch_stats, state.opt_w, weights, x,
                                     batches["train"]["label"][0], step_key(state, 3))
        metrics = {"lr": problem.weight_lr(state.opt_w), "train_loss": result.loss,
                   "train_accuracy": result.accuracy, "arch/updates": arch.updates, **arch.last}
        return state.replace(step=state.step + 1, params=result.params,
                             batch_stats=result.batch_stats, opt_w=result.opt_w,
                             arch=arch), metrics

    def _move(self, state, val, problem) -> TNDState:
        """One REINFORCE update of the logits on the val batch ``val`` ([1, B, ...])."""
        arch = state.arch
        logits = arch.policy.logits
        paths = reinforce.sample_paths(step_key(state, 2), logits, self.num_samples)
        argmax = {kind: jnp.argmax(x, axis=-1).astype(jnp.int32)[None]
                  for kind, x in logits.items()}
        evaluated = {kind: jnp.concatenate([paths[kind], argmax[kind]]) for kind in paths}
        count = make_correct_count(self._path_net(problem), problem.mean, problem.std,
                                   bn="batch")
        variables = {"params": state.params, "batch_stats": state.batch_stats}
        valid = jnp.ones(val["label"].shape, bool)
        correct = jax.lax.map(lambda path: count(variables, path, val["image"], val["label"],
                                                 valid), evaluated)
        accuracy = correct.astype(jnp.float32) / val["label"].size  # [M + 1], in [0, 1]
        costs = {name: table.cost(paths) for name, table in
                 self._costs(problem.net.num_classes, val["image"].shape[2:]).items()}
        rewards = self.reward(accuracy[:-1], costs)
        policy, info = reinforce.reinforce_update(arch.policy, paths, rewards, tx=self.rule,
                                                  baseline_step=self.baseline_step)
        last = {"reward_mean": jnp.mean(rewards), "reward_max": jnp.max(rewards),
                "params_mean": jnp.mean(costs["params"]) / 1e6,
                "sample_accuracy_mean": jnp.mean(accuracy[:-1]),
                "sample_accuracy_max": jnp.max(accuracy[:-1]), "argmax_accuracy": accuracy[-1],
                "baseline": info["baseline"], "policy_grad_norm": info["grad_norm"]}
        return TNDState(policy, arch.updates + 1,
                        {k: jnp.asarray(v, jnp.float32) for k, v in last.items()})

    def write_figures(self, metrics_path, workdir):
        """``rewards.png``: the rewards, sampled parameters and accuracies of the architecture
        steps (TND-NAS's Figs. 4-7) over the search, from the first on (none when the search
        logged none)."""
        moved = lambda record: record.get("arch/updates", 0) > 0  # noqa: E731
        if not os.path.exists(metrics_path) or not any(
                moved(record) for _, record in read_jsonl(metrics_path)[0]):
            return []
        path = os.path.join(workdir, "rewards.png")
        return [viz.plot_training_curves(metrics_path, path, keys=_FIGURE, keep=moved)]

    def _path_net(self, problem):
        """The supernet computing only each edge's chosen operation (the same variables)."""
        return self.space.supernet(problem.net.num_classes, single_path=True)

    def _costs(self, num_classes: int, image_shape) -> dict:
        """The cost tables of the evaluation networks of this stage's paths."""
        space = dataclasses.replace(self.space, C=self.eval_C, layers=self.eval_layers,
                                    auxiliary=False)
        return cached_cost_tables(space, num_classes, tuple(image_shape))


def tnd(space, optim_alpha=None, num_samples: int = 10, warmup_epochs: int = 10,
        param_target: float = 4.4e6, beta: float = -0.6, macs_weight: float = 0.0,
        macs_target: float = 6e8, macs_exponent: float = -0.6, baseline: str = "ema",
        baseline_decay: float = 0.95, grad_clip: float = 5.0, eval_C: int = 24,
        eval_layers: int = 20, init_scale: float = 1e-3) -> TNDSearch:
    """TND-NAS's architecture search in a DARTS ``space`` (the engine stages it). The reward is
    Eq. 9, ``Acc * (Params / param_target)^beta``, or with ``macs_weight`` c > 0 Eq. 10,
    ``Acc * [(1 - c) (Params / param_target)^beta + c (MACs / macs_target)^macs_exponent]``;
    Params and MACs are raw counts of the evaluation network (``eval_C``, ``eval_layers``).
    ``optim_alpha``: the logits' Adam (TND-NAS's 6e-3, (0.5, 0.999), 1e-3 where not given),
    after clipping to ``grad_clip``; ``baseline``: "ema" (b += ``baseline_decay`` (mean R - b),
    the author's code) or "none" (Eq. 8 as printed)."""
    if getattr(space, "name", None) != "darts":
        raise ValueError(f"The tnd strategy searches the DARTS space (config.space.name='darts'), "
                         f"got {getattr(space, 'name', space)!r}.")
    check_integer("num_samples", num_samples, 1)
    check_integer("warmup_epochs", warmup_epochs, 0)
    check_integer("eval_C", eval_C, 1)
    check_integer("eval_layers", eval_layers, 3)
    check_choice("baseline", baseline, BASELINES)
    if not param_target > 0 or not macs_target > 0:
        raise ValueError(f"config.strategy.param_target and macs_target (P and L, raw counts: "
                         f"4.4e6 for 4.4M parameters) must be > 0, got {param_target!r} and "
                         f"{macs_target!r}.")
    if not (beta <= 0 and macs_exponent <= 0):
        raise ValueError(f"config.strategy.beta and macs_exponent are penalties, <= 0 (-0.6 in "
                         f"TND-NAS on CIFAR-10; 0 rewards accuracy alone), got {beta!r} and "
                         f"{macs_exponent!r}.")
    if not 0 < baseline_decay <= 1:
        raise ValueError(f"config.strategy.baseline_decay must be in (0, 1] (0.95 in the "
                         f"author's code), got {baseline_decay!r}.")
    if not 0 <= macs_weight < 1:
        raise ValueError(f"config.strategy.macs_weight (c of Eq. 10; 0 for Eq. 9) must be in "
                         f"[0, 1), got {macs_weight!r}.")
    terms = [CostTerm("params", param_target, beta, 1.0 - macs_weight)]
    if macs_weight:
        terms.append(CostTerm("macs", macs_target, macs_exponent, macs_weight))
    if not init_scale > 0:
        raise ValueError(f"config.strategy.init_scale must be > 0 (1e-3 in TND-NAS), got "
                         f"{init_scale!r}.")
    rule = reinforce.reinforce_optimizer(optim_alpha, clip_norm=grad_clip)
    return TNDSearch(space, rule, Reward(tuple(terms)), num_samples, warmup_epochs,
                     baseline_decay if baseline == "ema" else None, eval_C, eval_layers,
                     init_scale)
