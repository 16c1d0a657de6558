"""CADAM on a frozen DARTS supernet (Mills 2020, Ch. 4; spec 001 sections 2.2 and 2.3).

One strategy that owns its two phases, on the engine's one clock:

1. Pre-training, the ``config.epochs`` of weight steps: per step alpha ~ U(0, 1)^{2x14x7}, its
   Alg. 2 cell (two edges per node, one operation other than ``none`` each; the same law as a
   uniform DARTS path) and one single-path weight step through it alone
   (``single_path.SinglePathSearch``; the other operations' weights, statistics and momentum
   stay as they were). The first ``eval_batches`` val batches are kept as the fixed evaluation
   set (``supernet_env.EvalSet``).
2. Search, ``queries`` more steps (``extra_steps``): the weights are frozen and each step is one
   CADAM query (``jaxnas.blackbox.cadam.env_step``, the same step as on the NB201 oracle) on the
   ``supernet_env.FrozenSupernet``: the accuracy of the queried cell on the evaluation set, batch
   norm in eval mode by default, evaluated once per architecture and cached.

At the end (``select``) the final top-K cells are scored by their preliminary test accuracy
(the whole test split, the supernet's weights) and the best is the genotype (spec 2.3 step 9;
``select_on="val"`` takes the top-K's best val accuracy instead). ``write_files`` writes the
Pareto fronts of every cell queried (``pareto_files``).

Why one strategy rather than two engine stages: the stages of ``jaxnas.engine.stages`` each start
from fresh weights and shrink operations, and a frozen-weight stage would need the engine to
carry weights across and to run steps without train batches. Here the phases are a
``lax.cond`` on the step inside one jitted step, one checkpointed state holds weights, agent,
replay, top-K, cache and evaluation set, and the engine only learned to run ``extra_steps``
after the planned epochs.
"""

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jaxnas.blackbox.cadam import CadamConfig, CadamState, env_step, init_cadam
from jaxnas.rl.networks import CADAM_DARTS_HIDDEN
from jaxnas.spaces import paths
from jaxnas.spaces.frozen import BN_MODES
from jaxnas.strategies import supernet_env as env_lib
from jaxnas.strategies.options import check_choice, check_integer
from jaxnas.strategies.pareto_files import write_pareto
from jaxnas.strategies.selection import SelectionResult
from jaxnas.strategies.single_path import SinglePathSearch

SELECT_ON = ("test", "val")
_PRETRAIN = ("lr", "train_loss", "train_accuracy")
_QUERY = ("val_accuracy", "reward", "epsilon", "explored", "cycles", "visited")


class CadamArch(NamedTuple):
    """Attributes: path: the last weight step's or query's path ``{kind: int32[E]}``; agent:
    actor, critic, optimizers, top-K, replay; visited: every cell queried (the cache);
    eval_set: the fixed val batches."""

    path: dict
    agent: CadamState
    visited: env_lib.Visited
    eval_set: env_lib.EvalSet


@dataclasses.dataclass(frozen=True)
class CadamSearch(SinglePathSearch):
    """Attributes: space: a DARTS space whose ops include ``none``; agent: CADAM's settings;
    queries: search steps; replay: the replay's capacity (the newest kept); eval_batches: val
    batches of the evaluation set; bn: "running" or "batch"; select_on: "test" or "val";
    flops_per_mac: FLOPs counted per multiply-add."""

    space: Any
    agent: CadamConfig
    queries: int = 20000
    replay: int = 5000
    eval_batches: int = 1
    bn: str = "running"
    select_on: str = "test"
    flops_per_mac: int = 2
    name: str = "cadam"

    @property
    def extra_steps(self) -> int:
        return self.queries

    @property
    def actions(self) -> env_lib.ActionSpace:
        return env_lib.ActionSpace.of(self.space, include_none=False)

    def init(self, key, arch_shapes):
        k_path, k_agent = jax.random.split(key)
        agent = init_cadam(k_agent, self.agent, self.replay, self.actions.shape)
        agent = agent._replace(key=jax.random.key_data(agent.key))  # raw, as checkpoints keep
        return CadamArch(paths.sample_path(self.space, k_path), agent,
                         env_lib.init_visited(arch_shapes, self.queries),
                         env_lib.init_eval_set(self.eval_batches, (1, 1, 1, 1)))

    def init_data(self, arch, batch_shape):
        return arch._replace(eval_set=env_lib.init_eval_set(self.eval_batches, batch_shape))

    def arch_weights(self, arch, key=None):
        """One-hot weights of the last path, or of a uniform Alg. 2 cell given a key."""
        path = arch.path if key is None else self._uniform_path(key)
        return paths.path_weights(self.space, path)

    def _uniform_path(self, key):
        alpha = jax.random.uniform(key, self.actions.shape)
        return self.actions.path(self.actions.discretize(alpha))

    def train_path(self, arch, key, problem, step):
        del problem, step
        path = self._uniform_path(key)
        return arch, path, path

    def step(self, state, batches, problem):
        state = env_lib.collect_eval_batch(state, batches["val"], problem.planned_steps,
                                           "pre-training")
        zeros = {name: jnp.zeros((), jnp.float32) for name in _PRETRAIN + _QUERY}

        def pretrain():
            new, metrics = SinglePathSearch.step(self, state, batches, problem)
            return new, {**zeros, **{k: jnp.asarray(v, jnp.float32) for k, v in
                                     metrics.items()}}

        def query():
            new, metrics = self._query(state, problem)
            return new, {**zeros, **metrics}

        return jax.lax.cond(state.step < problem.planned_steps, pretrain, query)

    def _query(self, state, problem):
        arch = state.arch
        env = env_lib.FrozenSupernet(
            self.actions, self.space, problem.plain_net, problem.mean, problem.std,
            {"params": state.params, "batch_stats": state.batch_stats}, arch.eval_set, self.bn,
            self.flops_per_mac)
        agent, visited, info = env_step(env, self.agent, arch.agent, arch.visited)
        path = self.actions.path_of_ops(info.cell)
        metrics = {"val_accuracy": info.accuracy, "reward": info.reward,
                   "epsilon": info.epsilon, "explored": info.explored, "cycles": info.cycles,
                   "visited": visited.size}
        arch = CadamArch(path, agent, visited, arch.eval_set)
        return state.replace(arch=arch, step=state.step + 1), \
            {k: jnp.asarray(v, jnp.float32) for k, v in metrics.items()}

    def select(self, state, space, evaluator, seed):
        """The top-K cell of the best preliminary test accuracy (or of the best val accuracy,
        ``select_on="val"``)."""
        del seed
        history = jax.device_get(state.arch.agent.history)
        size = int(history.size)
        if size == 0:
            raise ValueError("CADAM made no query, so its top-K is empty; raise "
                             "config.max_steps past the pre-training steps, or set it to 0.")
        members = jax.device_get(self.actions.path(jnp.asarray(history.archs[:size])))
        candidates = [{kind: codes[i] for kind, codes in members.items()} for i in range(size)]
        if self.select_on == "val":
            scores, metric = history.scores[:size].astype(float), "val_accuracy"
        else:
            scores, metric = evaluator.test_score(candidates, self.bn), "test_accuracy"
        best = int(jnp.argmax(jnp.asarray(scores)))
        result = SelectionResult(candidates[best], float(scores[best]), candidates, scores,
                                 metric)
        return paths.path_genotype(space, result.best_path), result

    def write_files(self, state, workdir):
        return write_pareto(workdir, self.space, jax.device_get(state.arch.visited))


def cadam(space, optim_alpha=None, queries: int = 20000, k: int = 500, tau: float = 0.95,
          batch_size: int = 64, xi: float = 5e-5, max_cycles: int = 1, warmup: int = 3000,
          hidden=CADAM_DARTS_HIDDEN, actor_lr: float = 1e-8, critic_lr: float = 1e-4,
          betas=(0.9, 0.99), replay: int = 5000, eval_batches: int = 1, bn: str = "running",
          select_on: str = "test", flops_per_mac: int = 2) -> CadamSearch:
    """The ``cadam`` registry entry (defaults: the thesis's DARTS settings, spec section 4;
    ``optim_alpha`` is unused: the agent's Adam is ``actor_lr``, ``critic_lr``, ``betas``)."""
    del optim_alpha
    if getattr(space, "name", None) != "darts":
        raise ValueError(f"The cadam strategy searches the DARTS space (config.space.name="
                         f"'darts'), got {getattr(space, 'name', space)!r}; on NAS-Bench-201 "
                         f"use experiments/configs/oracle_nb201.py:cadam.")
    agent = CadamConfig(k=k, tau=tau, batch_size=batch_size, xi=xi, max_cycles=max_cycles,
                        warmup=warmup, hidden=tuple(hidden), actor_lr=actor_lr,
                        critic_lr=critic_lr, betas=tuple(betas))
    check_integer("queries", queries, 1)
    check_integer("replay", replay, 1)
    check_integer("eval_batches", eval_batches, 1)
    check_integer("flops_per_mac", flops_per_mac, 1)
    check_choice("bn", bn, BN_MODES)
    check_choice("select_on", select_on, SELECT_ON)
    return CadamSearch(space, agent, queries, replay, eval_batches, bn, select_on, flops_per_mac)
