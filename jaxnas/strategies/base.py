"""The search state and the interface every search strategy implements.

A strategy owns the architecture: how alpha is initialized, how it becomes the per-edge operation
weights the supernet sees (softmax for DARTS; clipped, sampled or one-hot for others), and how one
search step updates weights and architecture. The engine only calls ``init``, ``step``,
``arch_weights`` and ``val_loss``; everything a strategy keeps between steps is in ``SearchState``
(``extra`` for archives, masks, baselines...), so the engine checkpoints it whole.
"""

import abc
from typing import Any

import flax
import jax
import jax.numpy as jnp

from jaxnas.data.augment import normalize
from jaxnas.strategies.problem import SearchProblem


class SearchState(flax.struct.PyTreeNode):
    """The whole state of a search. ``data_position``: batches consumed per stream;
    ``nonfinite_step``: the first step whose loss was NaN or infinite (-1: none yet)."""

    step: jax.Array
    params: Any
    batch_stats: Any
    alpha: Any
    opt_w: Any
    opt_alpha: Any
    rng: jax.Array
    data_position: dict
    nonfinite_step: jax.Array
    extra: Any


class Strategy(abc.ABC):
    """A search algorithm. ``train_batches`` / ``val_batches``: batches of each stream one step
    consumes (stacked on a leading axis when more than one)."""

    name = "strategy"
    train_batches = 1
    val_batches = 1

    def init_alpha(self, key, arch_shapes: dict) -> Any:
        """DARTS's initialization: 1e-3 * N(0, 1) per edge and operation."""
        keys = jax.random.split(key, len(arch_shapes))
        return {name: 1e-3 * jax.random.normal(k, shape)
                for k, (name, shape) in zip(keys, sorted(arch_shapes.items()))}

    def init_extra(self, alpha) -> Any:
        """Strategy-specific state (a pytree)."""
        return {}

    def arch_weights(self, alpha) -> Any:
        """The per-edge operation weights derived from alpha (softmax over operations)."""
        return jax.tree.map(lambda a: jax.nn.softmax(a, axis=-1), alpha)

    @abc.abstractmethod
    def step(self, state: SearchState, batches: dict, problem: SearchProblem):
        """One search step. ``batches``: ``{"train": {"image", "label"}, "val": {...}}`` (uint8
        images). Returns ``(state, metrics)`` with scalar metrics."""

    def val_loss(self, state: SearchState, batch: dict, problem: SearchProblem):
        """alpha -> validation loss on ``batch`` (un-augmented) at the current weights."""
        x = normalize(batch["image"], problem.mean, problem.std)
        return lambda alpha: problem.loss(state.params, state.batch_stats,
                                          self.arch_weights(alpha), x, batch["label"])[0]


def step_key(state: SearchState, stream: int):
    """The key of ``stream`` at this step: ``fold_in(fold_in(rng, step), stream)``."""
    return jax.random.fold_in(jax.random.fold_in(state.rng, state.step), stream)


def tree_norm(tree):
    return jnp.sqrt(sum(jnp.sum(jnp.square(x)) for x in jax.tree.leaves(tree)))
