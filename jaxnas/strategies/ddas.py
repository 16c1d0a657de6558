"""DDAS (Mills 2020, Ch. 3; spec 001 section 2.1): a DDPG agent proposes one whole architecture
per step while the supernet trains on it.

One strategy that owns its phases on the engine's clock; every engine step consumes
``inner_steps`` (M = 25) train batches:

1. Warm-up, the ``config.epochs`` (75): alpha = 1 on every edge and operation (all summed, the
   mixed supernet), M weight steps per engine step; the weight learning rate falls by cosine
   from 0.025 to 1e-3 and stays there (``engine.optim.cosine_by_epoch``). The first
   ``eval_batches`` val batches are kept as the fixed validation set D_V.
2. Search, ``sum(phases)`` more steps (``extra_steps``), step t (Alg. 1):
   - the action a_t: U(0, 1)^{2x14x8} in the exploration phase (and always for ``rs``), else
     mu(s_t) + Z_t: Z ~ U(-1e-5, 1e-5) (``nl``) or N(0, 0.05^2) (``g``, ``4s``); in 4S's Phase 4
     Z = 0 except during the stagnation bursts (``jaxnas.rl.stagnation``), Ornstein-Uhlenbeck.
     No clipping (ambiguity 10).
   - alpha^d_t = Alg. 2 per cell, ``none`` selectable (ambiguity 2); M single-path SGD steps on
     it (only its operations' weights, statistics and momentum move); then L_V and Acc on D_V.
   - r_t = (Acc_t - Acc_OS) / 2 + (L_V(t-1) - L_V(t)) / 2 (Eq. 3.3, accuracies as decimals;
     Acc_OS and L_V(-1) are the warmed-up alpha = 1 supernet's, ambiguity 6).
   - (s_t, a_t, r_t, s_{t+1} = alpha^d_t) to the replay (s_0 = all ones, ambiguity 11); after
     exploration, one critic step (Eq. 3.4, gamma 0.99), one actor step (Eq. 3.5) and soft
     target updates (tau 1e-3); in Phase 4 the batch comes from the newest 500 transitions.

The genotype is the visited cell of the highest val accuracy (the first selector of ambiguity
24); ``pareto.json`` lists every visited cell with its costs, the fronts and both selectors.

Why one strategy (as ``cadam``): the weights must carry over from the warm-up to the search, and
the step count of the search is the agent's, not the data's; the engine only runs the
``extra_steps`` after the planned epochs.
"""

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxnas.rl import replay as rb
from jaxnas.rl import stagnation
from jaxnas.rl.discretize import num_differing_pairs
from jaxnas.rl.losses import actor_loss, soft_update, td_critic_loss
from jaxnas.rl.networks import DDAS_HIDDEN, Actor, StateActionCritic
from jaxnas.rl.noise import OUState, gaussian_noise, ou_init, ou_step, uniform_noise
from jaxnas.rl.replay import Transition
from jaxnas.spaces import single_path
from jaxnas.spaces.frozen import BN_MODES
from jaxnas.strategies import supernet_env as env_lib
from jaxnas.strategies.base import Strategy, step_key
from jaxnas.strategies.options import check_choice, check_integer
from jaxnas.strategies.pareto_files import write_pareto
from jaxnas.strategies.shrinking import single_op_genotype

VARIANTS = ("rs", "nl", "g", "4s")
_PHASES = {"rs": (1500, 0, 0), "nl": (500, 1000, 0), "g": (500, 1000, 0), "4s": (500, 500, 500)}
_METRICS = ("lr", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "reward",
            "params", "flops", "explored", "burst", "critic_loss")


def reward(accuracy, base_accuracy, loss, previous_loss):
    """Eq. 3.3: (Acc - Acc_OS) / 2 + (L_V(t-1) - L_V(t)) / 2, accuracies in [0, 1]."""
    return 0.5 * (accuracy - base_accuracy) + 0.5 * (previous_loss - loss)


class Agent(NamedTuple):
    """The DDPG agent: networks, their targets and Adam states."""

    actor: Any
    critic: Any
    target_actor: Any
    target_critic: Any
    actor_opt: Any
    critic_opt: Any


class DDASArch(NamedTuple):
    """Attributes: path: the last path trained ``{kind: int32[E]}``; agent; replay of
    ``Transition(s, a, r, s')``; previous: alpha^d_{t-1} float[2, 14, 8] (s_t); previous_loss,
    base_loss, base_accuracy: L_V(t-1), L_V(OS), Acc(OS); stagnation and ou: 4S's detector and
    noise; visited: every step's cell, val accuracy, loss and costs; eval_set: D_V."""

    path: dict
    agent: Agent
    replay: rb.Replay
    previous: jax.Array
    previous_loss: jax.Array
    base_loss: jax.Array
    base_accuracy: jax.Array
    stagnation: stagnation.Stagnation
    ou: OUState
    visited: env_lib.Visited
    eval_set: env_lib.EvalSet


@dataclasses.dataclass(frozen=True)
class DDASSearch(Strategy):
    """Attributes: space: a DARTS space (ops with ``none``); variant: "rs", "nl", "g" or "4s";
    phases: steps of exploration, exploitation and Phase 4; inner_steps: M; the agent's
    settings (hidden, lrs, betas, gamma, tau, replay capacity, batch); noise settings;
    patience, similar_below: 4S's T_stag and similarity; phase4_replay: Phase 4's newest
    transitions; eval_batches, bn, flops_per_mac: the environment's."""

    space: Any
    variant: str = "nl"
    phases: tuple = (500, 1000, 0)
    inner_steps: int = 25
    hidden: tuple = DDAS_HIDDEN
    actor_lr: float = 1e-4
    critic_lr: float = 1e-3
    betas: tuple = (0.9, 0.99)
    gamma: float = 0.99
    tau: float = 1e-3
    replay: int = 1_000_000
    batch_size: int = 64
    uniform_scale: float = 1e-5
    gaussian_std: float = 0.05
    ou_sigma: float = 0.2
    patience: int = 32
    similar_below: int = 6
    phase4_replay: int = 500
    eval_batches: int = 1
    bn: str = "running"
    flops_per_mac: int = 2

    name = "ddas"
    single_path = True
    val_batches = 1

    @property
    def train_batches(self) -> int:
        return self.inner_steps

    @property
    def extra_steps(self) -> int:
        return sum(self.phases)

    @property
    def actions(self) -> env_lib.ActionSpace:
        return env_lib.ActionSpace.of(self.space, include_none=True)

    def _nets(self):
        shape = self.actions.shape
        return Actor(shape, hidden=self.hidden), StateActionCritic(shape, shape, self.hidden)

    def _tx(self, lr):
        return optax.adam(lr, b1=self.betas[0], b2=self.betas[1])

    def init(self, key, arch_shapes):
        k_actor, k_critic = jax.random.split(key)
        shape = self.actions.shape
        ones = jnp.ones(shape, jnp.float32)
        actor_net, critic_net = self._nets()
        actor, critic = actor_net.init(k_actor, ones), critic_net.init(k_critic, ones, ones)
        copy = lambda tree: jax.tree.map(jnp.array, tree)  # noqa: E731  distinct buffers
        agent = Agent(actor, critic, copy(actor), copy(critic),
                      self._tx(self.actor_lr).init(actor), self._tx(self.critic_lr).init(critic))
        # The replay never holds more than the search's steps.
        capacity = max(1, min(self.replay, self.extra_steps))
        replay = rb.init_replay(Transition(ones, ones, jnp.zeros((), jnp.float32), ones),
                                capacity)
        scalars = [jnp.zeros((), jnp.float32) for _ in range(3)]
        path = {kind: jnp.full((edges,), self.actions.none, jnp.int32)
                for kind, (edges, _) in arch_shapes.items()}
        return DDASArch(path, agent, replay, jnp.ones(shape, jnp.float32), *scalars,
                        stagnation.init_stagnation(), ou_init(shape),
                        env_lib.init_visited(arch_shapes, self.extra_steps),
                        env_lib.init_eval_set(self.eval_batches, (1, 1, 1, 1)))

    def init_data(self, arch, batch_shape):
        return arch._replace(eval_set=env_lib.init_eval_set(self.eval_batches, batch_shape))

    def arch_weights(self, arch, key=None):
        """One-hot weights of the last path (of Alg. 2 on a uniform action given a key)."""
        path = arch.path
        if key is not None:
            path = self.actions.path(self.actions.discretize(
                jax.random.uniform(key, self.actions.shape)))
        return {kind: jax.nn.one_hot(codes, len(self.space.ops)) for kind, codes in path.items()}

    def step(self, state, batches, problem):
        state = env_lib.collect_eval_batch(state, batches["val"], problem.planned_steps,
                                           "warm-up")
        zeros = {name: jnp.zeros((), jnp.float32) for name in _METRICS}

        def branch(fn):
            def run():
                new, metrics = fn(state, batches["train"], problem)
                return new.replace(step=state.step + 1), {
                    **zeros, **{k: jnp.asarray(v, jnp.float32) for k, v in metrics.items()}}
            return run

        return jax.lax.cond(state.step < problem.planned_steps, branch(self._warmup),
                            branch(self._search))

    def _weight_steps(self, state, train, problem, weights, mask):
        """M weight steps on the M train batches with ``weights`` (all ones, or a path),
        confined to ``mask`` (None: all parameters)."""

        def one(carry, i):
            params, batch_stats, opt_w = carry
            key = jax.random.fold_in(step_key(state, 0), i)
            x = problem.images(key, train["image"][i])
            result = problem.weight_step(params, batch_stats, opt_w, weights, x,
                                         train["label"][i], mask=mask)
            return (result.params, result.batch_stats, result.opt_w), (result.loss,
                                                                       result.accuracy)

        lr = problem.weight_lr(state.opt_w)
        (params, batch_stats, opt_w), (loss, acc) = jax.lax.scan(
            one, (state.params, state.batch_stats, state.opt_w), jnp.arange(self.inner_steps))
        state = state.replace(params=params, batch_stats=batch_stats, opt_w=opt_w)
        return state, {"lr": lr, "train_loss": jnp.mean(loss), "train_accuracy": jnp.mean(acc)}

    def _mixed(self, problem):
        """The problem over the mixed supernet (every operation summed) with alpha = 1."""
        net = self.space.supernet(problem.net.num_classes)
        ones = {kind: jnp.ones(shape) for kind, shape in self.space.arch_shapes().items()}
        return dataclasses.replace(problem, net=net, drop_path=None), ones

    def _warmup(self, state, train, problem):
        mixed, ones = self._mixed(problem)
        return self._weight_steps(state, train, mixed, ones, None)

    def _search(self, state, train, problem):
        arch, agent = state.arch, state.arch.agent
        t = state.step - problem.planned_steps
        explore_end, exploit_end = self.phases[0], self.phases[0] + self.phases[1]
        phase4 = t >= exploit_end
        k_random, k_noise, k_ou, k_sample = (step_key(state, s) for s in (6, 7, 8, 9))
        shape = self.actions.shape
        actor_net, critic_net = self._nets()
        variables = lambda s: {"params": s.params, "batch_stats": s.batch_stats}  # noqa: E731

        # Acc(OS), L_V(OS): the warmed-up alpha = 1 supernet on D_V, once.
        mixed, ones = self._mixed(problem)
        base_loss, base_acc = jax.lax.cond(
            t == 0, lambda: env_lib.evaluate(mixed.plain_net, problem.mean, problem.std,
                                             variables(state), ones, arch.eval_set, self.bn),
            lambda: (arch.base_loss, arch.base_accuracy))
        previous_loss = jnp.where(t == 0, base_loss, arch.previous_loss)

        burst = (arch.stagnation.burst > 0) & phase4
        ou_x, ou = ou_step(k_ou, arch.ou, sigma=self.ou_sigma)
        noise = {"nl": uniform_noise(k_noise, shape, self.uniform_scale),
                 "g": gaussian_noise(k_noise, shape, self.gaussian_std),
                 "4s": jnp.where(phase4, jnp.where(burst, ou_x, 0.0),
                                 gaussian_noise(k_noise, shape, self.gaussian_std))}
        explored = (t < explore_end) | (self.variant == "rs")
        policy = actor_net.apply(agent.actor, arch.previous) + noise.get(self.variant, 0.0)
        action = jnp.where(explored, jax.random.uniform(k_random, shape), policy)
        one_hot = self.actions.discretize(action)
        path = self.actions.path(one_hot)

        owners = single_path.op_owners(self.space, state.params)
        mask = single_path.path_mask(owners, path)
        state, metrics = self._weight_steps(state, train, problem, path, mask)
        loss, accuracy = env_lib.evaluate(problem.plain_net, problem.mean, problem.std,
                                          variables(state), path, arch.eval_set, self.bn)
        r = reward(accuracy, base_acc, loss, previous_loss)
        replay = rb.add(arch.replay, Transition(arch.previous, action, r, one_hot))
        newest = jnp.where(phase4, self.phase4_replay, rb.capacity(replay))
        agent, critic_loss = jax.lax.cond(
            explored, lambda: (agent, jnp.zeros((), jnp.float32)),
            lambda: self._update(agent, rb.sample(k_sample, replay, self.batch_size, newest),
                                 actor_net, critic_net))

        similar = num_differing_pairs(one_hot, arch.previous) < self.similar_below
        detector, starts = stagnation.update(arch.stagnation, similar, self.patience)
        detector = jax.tree.map(lambda new, old: jnp.where(phase4, new, old), detector,
                                arch.stagnation)
        ou = jax.tree.map(lambda fresh, cont, old: jnp.where(starts & phase4, fresh,
                                                             jnp.where(burst, cont, old)),
                          ou_init(shape), ou, arch.ou)
        costs = env_lib.path_costs(self.space, problem.net.num_classes,
                                   arch.eval_set.image.shape[2:], path, self.flops_per_mac)
        visited = env_lib.record(arch.visited, path, accuracy, loss, costs)
        arch = DDASArch(path, agent, replay, one_hot, loss, base_loss, base_acc, detector, ou,
                        visited, arch.eval_set)
        metrics.update({"val_loss": loss, "val_accuracy": 100.0 * accuracy, "reward": r,
                        "params": costs[0], "flops": costs[1], "explored": explored,
                        "burst": burst, "critic_loss": critic_loss})
        return state.replace(arch=arch), metrics

    def _update(self, agent, batch, actor_net, critic_net):
        """One critic step (Eq. 3.4), one actor step (Eq. 3.5), soft target updates."""
        loss, grads = jax.value_and_grad(td_critic_loss)(
            agent.critic, agent.target_critic, agent.target_actor, batch,
            critic_apply=critic_net.apply, actor_apply=actor_net.apply, gamma=self.gamma)
        updates, critic_opt = self._tx(self.critic_lr).update(grads, agent.critic_opt,
                                                              agent.critic)
        critic = optax.apply_updates(agent.critic, updates)
        grads = jax.grad(actor_loss)(agent.actor, batch.state, actor_apply=actor_net.apply,
                                     q=lambda s, a: critic_net.apply(critic, s, a))
        updates, actor_opt = self._tx(self.actor_lr).update(grads, agent.actor_opt, agent.actor)
        actor = optax.apply_updates(agent.actor, updates)
        return Agent(actor, critic, soft_update(actor, agent.target_actor, self.tau),
                     soft_update(critic, agent.target_critic, self.tau), actor_opt,
                     critic_opt), loss

    def derive(self, arch, space):
        """The visited cell of the highest val accuracy (every edge whose op is not none)."""
        visited = jax.device_get(arch.visited)
        if int(visited.size) == 0:
            return _genotype(space, jax.device_get(arch.path))
        best = int(jnp.argmax(visited.accuracy[:int(visited.size)]))
        return _genotype(space, {kind: codes[best] for kind, codes in visited.paths.items()})

    def write_files(self, state, workdir):
        return write_pareto(workdir, self.space, jax.device_get(state.arch.visited))


def _genotype(space, path):
    return single_op_genotype({kind: [(space.ops[int(c)],) for c in codes]
                               for kind, codes in path.items()}, space.edge_list)


def ddas(space, optim_alpha=None, variant: str = "nl", phases=None, inner_steps: int = 25,
         hidden=DDAS_HIDDEN, actor_lr: float = 1e-4, critic_lr: float = 1e-3,
         betas=(0.9, 0.99), gamma: float = 0.99, tau: float = 1e-3, replay: int = 1_000_000,
         batch_size: int = 64, uniform_scale: float = 1e-5, gaussian_std: float = 0.05,
         ou_sigma: float = 0.2, patience: int = 32, similar_below: int = 6,
         phase4_replay: int = 500, eval_batches: int = 1, bn: str = "running",
         flops_per_mac: int = 2) -> DDASSearch:
    """The ``ddas`` registry entry (defaults: the thesis's, spec section 4). ``phases``:
    (exploration, exploitation, Phase 4) steps, by default the variant's (RS 1500 random; NL
    and G 500 + 1000; 4S 500 + 500 + 500); ``optim_alpha`` is unused."""
    del optim_alpha
    if getattr(space, "name", None) != "darts":
        raise ValueError(f"The ddas strategy searches the DARTS space (config.space.name="
                         f"'darts'), got {getattr(space, 'name', space)!r}.")
    check_choice("variant", variant, VARIANTS)
    phases = _PHASES[variant] if phases is None else tuple(phases)
    if len(phases) != 3 or any(isinstance(p, bool) or not isinstance(p, int) or p < 0
                               for p in phases) or not sum(phases):
        raise ValueError(f"config.strategy.phases must be three step counts >= 0 "
                         f"(exploration, exploitation, Phase 4) with a positive sum, got "
                         f"{phases!r}.")
    if variant != "4s" and phases[2]:
        raise ValueError(f"Only the 4s variant has a Phase 4; variant {variant!r} got phases "
                         f"{phases!r}.")
    for name, value in (("inner_steps", inner_steps), ("replay", replay),
                        ("batch_size", batch_size), ("patience", patience),
                        ("similar_below", similar_below), ("phase4_replay", phase4_replay),
                        ("eval_batches", eval_batches), ("flops_per_mac", flops_per_mac)):
        check_integer(name, value, 1)
    if not 0 < tau < 1:
        raise ValueError(f"config.strategy.tau (the target mixing rate) must be in (0, 1), "
                         f"1e-3 in DDAS, got {tau!r}.")
    if not 0 <= gamma <= 1:
        raise ValueError(f"config.strategy.gamma (the discount) must be in [0, 1], 0.99 in "
                         f"DDAS, got {gamma!r}.")
    for name, value in (("actor_lr", actor_lr), ("critic_lr", critic_lr),
                        ("uniform_scale", uniform_scale), ("gaussian_std", gaussian_std),
                        ("ou_sigma", ou_sigma)):
        if not value >= 0:
            raise ValueError(f"config.strategy.{name} must be >= 0, got {value!r}.")
    check_choice("bn", bn, BN_MODES)
    return DDASSearch(space, variant, phases, inner_steps, tuple(hidden), actor_lr, critic_lr,
                      tuple(betas), gamma, tau, replay, batch_size, uniform_scale, gaussian_std,
                      ou_sigma, patience, similar_below, phase4_replay, eval_batches, bn,
                      flops_per_mac)
