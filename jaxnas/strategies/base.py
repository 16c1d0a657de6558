"""The search state and the interface every search strategy implements.

A strategy owns the architecture: its state (any pytree: logits and an optimizer state, a mask,
a posterior, a controller's parameters...), how that state becomes the per-edge operation weights
the supernet sees (the mode, or a sample given a key), one search ``step``, the derivation of a
genotype and its own metrics. The engine calls only what is defined here, and checkpoints the
whole ``SearchState``, the strategy's ``arch`` included.
"""

import abc
from typing import Any

import flax
import jax
import jax.numpy as jnp

from jaxnas.strategies.problem import SearchProblem


class SearchState(flax.struct.PyTreeNode):
    """The whole state of a search.

    Attributes:
      step: search steps done (int32).
      params, batch_stats: the supernet's variables. opt_w: the weight optimizer's state, whose
        update count is the clock of the weight learning rate.
      arch: the strategy's architecture state (``Strategy.init``).
      rng: the run's key; a step's keys are ``fold_in(fold_in(rng, step), stream)``.
      data_position: batches consumed per stream.
      nonfinite_step: the first step whose metrics were NaN or infinite (-1: none yet).
    """

    step: jax.Array
    params: Any
    batch_stats: Any
    opt_w: Any
    arch: Any
    rng: jax.Array
    data_position: dict
    nonfinite_step: jax.Array


class Strategy(abc.ABC):
    """A search algorithm.

    Attributes:
      name: the registry name. train_batches, val_batches: batches of each stream one step
        consumes (stacked on a leading axis). differentiable: whether ``hessian_target`` exists
        (the alpha-Hessian eigenvalue diagnostic). single_path: whether the supernet computes
        only the operation each edge's weights choose (``arch_weights`` then returns operation
        indices or one-hot weights). extra_steps: search steps after the ``config.epochs`` of
        weight training (the RL phase of CADAM on its frozen supernet, DDAS's search after its
        warm-up); the weight learning rate stays at its final value in them.
    """

    name = "strategy"
    train_batches = 1
    val_batches = 1
    differentiable = False
    single_path = False
    extra_steps = 0

    @abc.abstractmethod
    def init(self, key, arch_shapes: dict) -> Any:
        """The architecture state at step 0; ``arch_shapes``: ``{name: (edges, ops)}``."""

    def init_data(self, arch, batch_shape: tuple) -> Any:
        """``arch`` completed for batches of images of ``batch_shape`` [B, H, W, C] (a strategy
        that keeps a fixed evaluation set in its state sizes it here); by default ``arch``."""
        del batch_shape
        return arch

    @abc.abstractmethod
    def arch_weights(self, arch, key=None) -> Any:
        """The per-edge operation weights ``{name: [E, K]}``: the mode of ``arch`` without a key
        (logging, derivation, lookups), a sample with one."""

    @abc.abstractmethod
    def step(self, state: SearchState, batches: dict, problem: SearchProblem):
        """One search step. ``batches``: ``{"train": {"image", "label"}, "val": {...}}`` (uint8
        images [n, B, H, W, C], labels [n, B]). Returns ``(state, metrics)``, scalar metrics."""

    def derive(self, arch, space):
        """The genotype of ``arch`` in ``space`` (host side): by default the space's
        discretization of the mode weights."""
        return space.derive(jax.device_get(self.arch_weights(arch)))

    def select(self, state: SearchState, space, evaluator, seed: int):
        """The final genotype and a record of how it was selected (a
        ``strategies.selection.SelectionResult``, or None): by default ``derive``, no record.
        ``evaluator.score(paths, num_batches)`` scores single paths ``{key: int32 [E]}`` by
        their val accuracy (%) with the supernet's weights (``engine.evaluate``), for the
        strategies that select by evaluating candidates."""
        del evaluator, seed
        return self.derive(state.arch, space), None

    def write_files(self, state: SearchState, workdir: str) -> list[str]:
        """Strategy-specific files of a finished search from its final state (process 0 calls
        it); the paths written."""
        del state, workdir
        return []

    def hessian_target(self, state: SearchState, batch: dict, problem: SearchProblem):
        """``(loss, alpha)``: the val loss on ``batch`` as a function of the differentiable
        architecture parameters, and their value (for ``differentiable`` strategies)."""
        raise ValueError(f"The {self.name!r} strategy has no differentiable architecture "
                         "parameters; set config.eigenvalue_every=0.")

    def write_figures(self, metrics_path: str, workdir: str) -> list[str]:
        """Strategy-specific plots of a finished search, from its ``metrics.jsonl``; the paths
        written."""
        del metrics_path, workdir
        return []


def step_key(state: SearchState, stream: int):
    """The key of ``stream`` at this step: ``fold_in(fold_in(rng, step), stream)``."""
    return jax.random.fold_in(jax.random.fold_in(state.rng, state.step), stream)


def tree_norm(tree):
    return jnp.sqrt(sum(jnp.sum(jnp.square(x)) for x in jax.tree.leaves(tree)))
