"""Pure, jit-able reinforcement-learning pieces of DDAS and CADAM (Mills 2020, spec 001): the
action-to-architecture maps (Algs. 2-3), actor and critic MLPs, a replay buffer, exploration
noise and schedules, the DDPG and quantile losses, and CADAM's top-K history state. Built on
JAX and Flax only; the loops that use them live in ``jaxnas.strategies``.

The generic verbs stay qualified by their module: ``replay.add``, ``replay.sample``,
``history.insert``, ``stagnation.update``."""

from jaxnas.rl import discretize, history, losses, networks, noise, replay, stagnation
from jaxnas.rl.discretize import (NODE_OFFSETS, discretize_darts, discretize_nb201,
                                  num_differing_pairs, op_indices)
from jaxnas.rl.history import TopKHistory, history_state, init_history
from jaxnas.rl.losses import (actor_loss, check_loss, num_cycles, quantile_critic_loss,
                              soft_update, td_critic_loss)
from jaxnas.rl.networks import (CADAM_DARTS_HIDDEN, CADAM_NB201_HIDDEN, DDAS_HIDDEN, MLP,
                                ActionCritic, Actor, StateActionCritic)
from jaxnas.rl.noise import (OUState, cosine_epsilon, epsilon_greedy, gaussian_noise, ou_init,
                             ou_step, uniform_noise)
from jaxnas.rl.replay import Replay, Transition, init_replay
from jaxnas.rl.stagnation import Stagnation, init_stagnation
