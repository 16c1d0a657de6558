"""CADAM (Mills 2020, Ch. 4; spec 001 section 2.3) on an environment that scores architectures,
as pure jitted steps: the NB201 oracle here (``cadam_step``), the frozen supernet of
``jaxnas.strategies.cadam`` through ``env_step``.

An environment is any object with ``arch_shape`` (the action's shape, e.g. (6, 5) or (2, 14, 7)),
``discretize(action) -> one-hot alpha^d`` (Alg. 3 or Alg. 2) and ``query(one_hot, env_state) ->
(accuracy in %, env_state)``, its own state (a cache, say) threaded through the step.

Per query t (one step, ``env_step``):

1. s_t = the mean of the top-K distinct cells seen so far (one-hot [6, 5]; 0 before any, spec
   ambiguities 11 and 18; ``jaxnas.rl.history``).
2. a_t = mu(s_t) + Z_t, Z_t ~ U(-xi, xi) (Eq. 4.2); with probability epsilon_t (cosine 1.0 ->
   0.05 by step 175) a_t is replaced by U(0, 1)^{6x5}, without Z (ambiguity 19). With
   ``warmup=W`` the first W steps are random and the rest are not, instead of epsilon-greedy.
3. The cell is ``env.discretize(a_t)`` (Alg. 3 on NB201: the argmax of each row; no clipping,
   ambiguity 10); the environment gives its accuracy Acc (%), and r_t = 100^(Acc / 100) (Eq.
   4.1, Acc as a decimal).
4. The cell enters the top-K by Acc (duplicates not added, ties to the earlier); (s_t, a_t, r_t)
   goes to the replay, which keeps every step on NB201 (capacity = queries) and the newest
   ``capacity`` on DARTS (5k).
5. C = min(|R| // |B_R|, C_max) cycles (Eq. 4.6), each: a batch of |B_R| drawn with replacement,
   one Adam step of the critic Q(a) on the tau check loss (Eq. 4.4), then one of the actor on
   -mean Q(mu(s)) with the updated critic (Eq. 4.5). No target networks, no bootstrap.

Defaults are the thesis's NB201 settings (section 4): K 64, tau 0.9, |B_R| 8, xi 1e-4, C_max 10,
hidden (128, 256, 128) for both MLPs, Adam betas (0.9, 0.99), actor lr 1e-8 (as printed;
ambiguity 16), critic lr 1e-4. ``cadam_search`` scans ``cadam_step`` over the queries in one
jit; ``run_cadam`` returns its ``History``.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxnas.benchmarks.oracle import NUM_EDGES, NUM_OPS, NB201Oracle
from jaxnas.blackbox.history import History, as_key, check_oracle, make_history
from jaxnas.rl import history as topk
from jaxnas.rl import replay as rb
from jaxnas.rl._checks import check_integer, check_real
from jaxnas.rl.discretize import discretize_nb201, op_indices
from jaxnas.rl.losses import actor_loss, num_cycles, quantile_critic_loss
from jaxnas.rl.networks import CADAM_NB201_HIDDEN, ActionCritic, Actor
from jaxnas.rl.noise import cosine_epsilon, epsilon_greedy, uniform_noise
from jaxnas.rl.replay import Transition

ARCH_SHAPE = (NUM_EDGES, NUM_OPS)


@dataclasses.dataclass(frozen=True)
class CadamConfig:
    """CADAM's settings (defaults: the thesis's NAS-Bench-201 values). Bad values raise a
    ValueError naming the field and the value."""

    k: int = 64
    tau: float = 0.9
    batch_size: int = 8
    xi: float = 1e-4
    max_cycles: int = 10
    eps_start: float = 1.0
    eps_end: float = 0.05
    eps_steps: int = 175
    warmup: int | None = None
    hidden: tuple[int, ...] = CADAM_NB201_HIDDEN
    actor_lr: float = 1e-8
    critic_lr: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.99)
    reward_base: float = 100.0
    state_over: str = "members"

    def __post_init__(self):
        check_integer("k", self.k, 1, "the top-K history size, 64 on NB201")
        check_real("tau", self.tau, 0, 1, "()", "the critic's quantile level, 0.9 on NB201")
        check_integer("batch_size", self.batch_size, 1, "|B_R|, 8 on NB201")
        check_real("xi", self.xi, 0, float("inf"), "[)", "the action noise U(-xi, xi), 1e-4")
        check_integer("max_cycles", self.max_cycles, 1, "C_max, 10 on NB201")
        check_real("eps_start", self.eps_start, 0, 1, "[]", "the initial epsilon, 1.0")
        check_real("eps_end", self.eps_end, 0, 1, "[]", "the final epsilon, 0.05")
        check_integer("eps_steps", self.eps_steps, 1, "the annealing steps, 175")
        if self.warmup is not None:
            check_integer("warmup", self.warmup, 0, "W random steps instead of epsilon-greedy; "
                          "None for epsilon-greedy (NB201)")
        if not isinstance(self.hidden, (tuple, list)) or not self.hidden:
            raise ValueError(f"hidden must be a non-empty tuple of layer widths, e.g. "
                             f"(128, 256, 128), got {self.hidden!r}.")
        object.__setattr__(self, "hidden", tuple(self.hidden))
        for i, width in enumerate(self.hidden):
            check_integer(f"hidden[{i}]", width, 1, "an MLP layer width")
        check_real("actor_lr", self.actor_lr, 0, float("inf"), "()", "1e-8 in the thesis")
        check_real("critic_lr", self.critic_lr, 0, float("inf"), "()", "1e-4 in the thesis")
        if not isinstance(self.betas, (tuple, list)) or len(self.betas) != 2:
            raise ValueError(f"betas must be Adam's pair (b1, b2), e.g. (0.9, 0.99), got "
                             f"{self.betas!r}.")
        object.__setattr__(self, "betas", tuple(self.betas))
        for i, b in enumerate(self.betas):
            check_real(f"betas[{i}]", b, 0, 1, "[)", "Adam's betas, (0.9, 0.99)")
        check_real("reward_base", self.reward_base, 1, float("inf"), "()",
                   "r = reward_base^(Acc/100), 100 in the thesis")
        if self.state_over not in ("members", "capacity"):
            raise ValueError(f"state_over must be 'members' (mean of the top-K members) or "
                             f"'capacity' (their sum / K), got {self.state_over!r}.")

    def actor(self, arch_shape=ARCH_SHAPE) -> Actor:
        return Actor(action_shape=tuple(arch_shape), hidden=self.hidden)

    def critic(self, arch_shape=ARCH_SHAPE) -> ActionCritic:
        return ActionCritic(action_shape=tuple(arch_shape), hidden=self.hidden)

    def optimizer(self, lr: float) -> optax.GradientTransformation:
        return optax.adam(lr, b1=self.betas[0], b2=self.betas[1])

    def epsilon(self, step) -> jax.Array:
        """The probability of a random action at ``step`` (0-based)."""
        if self.warmup is not None:
            return jnp.where(jnp.asarray(step) < self.warmup, 1.0, 0.0).astype(jnp.float32)
        return cosine_epsilon(step, self.eps_start, self.eps_end, self.eps_steps)


class CadamState(NamedTuple):
    """Everything one CADAM search carries from step to step (a pytree)."""

    actor_params: Any
    critic_params: Any
    actor_opt: Any
    critic_opt: Any
    history: topk.TopKHistory
    replay: rb.Replay
    step: jax.Array
    key: jax.Array


class OracleEnvironment(NamedTuple):
    """The NB201 oracle as an environment (Alg. 3; the search-metric accuracy; no state)."""

    oracle: NB201Oracle
    arch_shape = ARCH_SHAPE

    def discretize(self, action):
        return discretize_nb201(action)

    def query(self, one_hot, env_state):
        return self.oracle.search_accuracy(op_indices(one_hot)), env_state


class CadamStepInfo(NamedTuple):
    """What one step did: ``cell`` int32[*arch_shape[:-1]] (each edge's op, -1 on an edge Alg. 2
    leaves out), ``accuracy`` (%), ``reward``,
    ``epsilon``, ``explored`` (a random action), ``cycles`` (updates run)."""

    cell: jax.Array
    accuracy: jax.Array
    reward: jax.Array
    epsilon: jax.Array
    explored: jax.Array
    cycles: jax.Array


def init_cadam(key_or_seed, config: CadamConfig = CadamConfig(), capacity: int = 500,
               arch_shape: tuple[int, ...] = ARCH_SHAPE) -> CadamState:
    """A fresh search: new networks and optimizers, empty top-K and a replay of ``capacity``
    transitions (the number of queries: NB201's replay keeps every step), for actions of
    ``arch_shape`` (the environment's)."""
    if not isinstance(config, CadamConfig):
        raise ValueError(f"config must be a CadamConfig, got {config!r}")
    check_integer("capacity", capacity, 1, "the replay size; the number of queries on NB201")
    return _init(as_key(key_or_seed), config, capacity, tuple(arch_shape))


@functools.partial(jax.jit, static_argnums=(1, 2, 3))
def _init(key, config, capacity, arch_shape):
    k_actor, k_critic, key = jax.random.split(key, 3)
    zeros = jnp.zeros(arch_shape, jnp.float32)
    actor_params = config.actor(arch_shape).init(k_actor, zeros)
    critic_params = config.critic(arch_shape).init(k_critic, zeros)
    return CadamState(
        actor_params, critic_params,
        config.optimizer(config.actor_lr).init(actor_params),
        config.optimizer(config.critic_lr).init(critic_params),
        topk.init_history(arch_shape, config.k),
        rb.init_replay(Transition(zeros, zeros, jnp.zeros((), jnp.float32)), capacity),
        jnp.zeros((), jnp.int32), key)


@functools.partial(jax.jit, static_argnums=1)
def cadam_step(oracle: NB201Oracle, config: CadamConfig,
               state: CadamState) -> tuple[CadamState, CadamStepInfo]:
    """One query of CADAM on the NB201 oracle and its updates (module docstring)."""
    state, _, info = env_step(OracleEnvironment(oracle), config, state, ())
    return state, info


def env_step(env, config: CadamConfig, state: CadamState,
             env_state) -> tuple[CadamState, object, CadamStepInfo]:
    """One query of CADAM on ``env`` (module docstring) and its updates: ``(state, env_state,
    info)``. Pure; jit it with ``config`` (and a non-pytree ``env``) static."""
    shape = tuple(env.arch_shape)
    actor, critic = config.actor(shape), config.critic(shape)
    actor_tx, critic_tx = config.optimizer(config.actor_lr), config.optimizer(config.critic_lr)
    k_noise, k_explore, k_cycles = jax.random.split(jax.random.fold_in(state.key, state.step), 3)

    s = topk.history_state(state.history, config.state_over)
    action = actor.apply(state.actor_params, s) + uniform_noise(k_noise, shape, config.xi)
    epsilon = config.epsilon(state.step)
    action, explored = epsilon_greedy(k_explore, action, epsilon)
    one_hot = env.discretize(action)
    cell = op_indices(one_hot)
    accuracy, env_state = env.query(one_hot, env_state)
    reward = jnp.power(config.reward_base, accuracy / 100.0)
    history = topk.insert(state.history, one_hot, accuracy)
    replay = rb.add(state.replay, Transition(s, action, reward))
    cycles = num_cycles(replay.size, config.batch_size, config.max_cycles)

    def cycle(i, carry):
        actor_params, critic_params, actor_opt, critic_opt = carry
        batch = rb.sample(jax.random.fold_in(k_cycles, i), replay, config.batch_size)
        grads = jax.grad(quantile_critic_loss)(critic_params, batch, critic_apply=critic.apply,
                                               tau=config.tau)
        updates, critic_opt = critic_tx.update(grads, critic_opt, critic_params)
        critic_params = optax.apply_updates(critic_params, updates)
        grads = jax.grad(actor_loss)(actor_params, batch.state, actor_apply=actor.apply,
                                     q=lambda _, a: critic.apply(critic_params, a))
        updates, actor_opt = actor_tx.update(grads, actor_opt, actor_params)
        actor_params = optax.apply_updates(actor_params, updates)
        return actor_params, critic_params, actor_opt, critic_opt

    actor_params, critic_params, actor_opt, critic_opt = jax.lax.fori_loop(
        0, cycles, cycle,
        (state.actor_params, state.critic_params, state.actor_opt, state.critic_opt))
    new_state = CadamState(actor_params, critic_params, actor_opt, critic_opt, history, replay,
                           state.step + 1, state.key)
    return new_state, env_state, CadamStepInfo(cell, accuracy, reward, epsilon, explored, cycles)


@functools.partial(jax.jit, static_argnums=(2, 3))
def _scan(oracle, state, config, queries):
    return jax.lax.scan(lambda st, _: cadam_step(oracle, config, st), state, None,
                        length=queries)


def cadam_search(oracle: NB201Oracle, key_or_seed, queries: int = 500,
                 config: CadamConfig | None = None,
                 **settings) -> tuple[CadamState, CadamStepInfo]:
    """``queries`` steps from ``init_cadam(key_or_seed, config, queries)``, in one jitted scan:
    the final state and the per-step ``CadamStepInfo`` (fields with a leading [queries] axis).
    ``settings`` override fields of ``config`` (default ``CadamConfig()``)."""
    check_oracle(oracle)
    check_integer("queries", queries, 1, "the number of oracle evaluations, e.g. 500")
    fields = {f.name for f in dataclasses.fields(CadamConfig)}
    unknown = sorted(set(settings) - fields)
    if unknown:
        raise ValueError(f"unknown CADAM setting(s) {unknown}; the settings are {sorted(fields)}")
    config = CadamConfig() if config is None else config
    if not isinstance(config, CadamConfig):
        raise ValueError(f"config must be a CadamConfig, got {config!r}")
    config = dataclasses.replace(config, **settings)
    return _scan(oracle.bare(), init_cadam(key_or_seed, config, queries), config, queries)


def run_cadam(oracle: NB201Oracle, key_or_seed, queries: int = 500,
              config: CadamConfig | None = None, **settings) -> History:
    """CADAM for ``queries`` steps (one query each): ``cadam_search``'s cells as a ``History``.
    E.g. ``run_cadam(oracle, 1, k=32, tau=0.95)``."""
    _, info = cadam_search(oracle, key_or_seed, queries, config, **settings)
    return make_history(oracle, info.cell)
