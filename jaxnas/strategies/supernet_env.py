"""The DARTS supernet as the environment of DDAS and CADAM (spec 001, sections 2.1 step 2 and
2.3 step 1): a fixed evaluation set, the loss and accuracy of one architecture on it, the map
from a joint action's alpha^d to a single path, and the record of every architecture a run
visited, with its costs.

- ``EvalSet``: the first n val batches of the run (images uint8 [n, B, H, W, C], labels
  [n, B]), stored as the engine hands them over (``capture``), so that every query of a run is
  scored on the same images (ambiguity 7: the whole val half is n = half // B).
- ``evaluate``: (mean cross-entropy, accuracy in [0, 1]) of a path on the set, batch norm in
  eval mode with the running statistics (``bn="running"``, ambiguity 21) or with each batch's own
  (``"batch"``).
- ``ActionSpace``: alpha^d float[2, 14, K'] (normal, reduce; ambiguity 3) -> a path
  ``{kind: int32[14]}``, the action's K' operations indexing the space's operations (all of them
  for DDAS, all but ``none`` for CADAM), ``none`` on the edges Alg. 2 leaves out.
- ``Visited``: per row a path, its accuracy, loss, parameters and FLOPs: the points of the
  Pareto fronts, and CADAM's per-architecture cache (``lookup``).
- ``FrozenSupernet``: the environment of ``jaxnas.blackbox.cadam.env_step`` over fixed weights,
  evaluating an architecture once and answering repeats from its ``Visited`` record.
"""

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jaxnas.data.augment import normalize
from jaxnas.rl.discretize import discretize_darts, op_indices
from jaxnas.spaces.costs import cached_cost_tables
from jaxnas.spaces.frozen import frozen_logits
from jaxnas.strategies.problem import cross_entropy

KINDS = ("normal", "reduce")  # the cell axis of a joint DARTS action


class EvalSet(NamedTuple):
    """``image`` uint8[n, B, H, W, C], ``label`` int32[n, B]."""

    image: jax.Array
    label: jax.Array


def init_eval_set(num_batches: int, batch_shape: tuple) -> EvalSet:
    """An empty set of ``num_batches`` batches of ``batch_shape`` [B, H, W, C]."""
    return EvalSet(jnp.zeros((num_batches,) + tuple(batch_shape), jnp.uint8),
                   jnp.zeros((num_batches, batch_shape[0]), jnp.int32))


def capture(eval_set: EvalSet, val: dict, step) -> EvalSet:
    """``eval_set`` with the step's val batch (``{"image": [1, B, ...], "label": [1, B]}``) as
    row ``step`` while ``step`` < n; unchanged afterwards."""
    n = eval_set.label.shape[0]
    row = jnp.minimum(step, n - 1)
    take = step < n

    def put(rows, new):
        return rows.at[row].set(jnp.where(take, new.astype(rows.dtype), rows[row]))

    return EvalSet(put(eval_set.image, val["image"][0]), put(eval_set.label, val["label"][0]))


def collect_eval_batch(state, val: dict, planned_steps: int, phase: str):
    """``state`` with the step's val batch captured into ``state.arch.eval_set`` (see
    ``capture``); the first ``n`` steps of the run, the ``phase`` that collects them, must be
    at least ``n`` (``config.strategy.eval_batches``)."""
    n = state.arch.eval_set.label.shape[0]
    if planned_steps < n:
        raise ValueError(f"config.strategy.eval_batches ({n}) exceeds the {planned_steps} "
                         f"{phase} steps that collect them; lower it or lengthen the {phase}.")
    return state.replace(arch=state.arch._replace(
        eval_set=capture(state.arch.eval_set, val, state.step)))


def evaluate(net, mean, std, variables, path: dict, eval_set: EvalSet,
             bn: str = "running") -> tuple[jax.Array, jax.Array]:
    """(cross-entropy, accuracy in [0, 1]) of the single-path ``net`` on ``path`` over the
    set, batch by batch (``lax.map``); nothing is updated."""

    def one(batch):
        images, labels = batch
        logits = frozen_logits(net, variables, normalize(images, mean, std), path, bn)
        return cross_entropy(logits, labels), jnp.mean(jnp.argmax(logits, -1) == labels)

    losses, accuracies = jax.lax.map(one, (eval_set.image, eval_set.label))
    return jnp.mean(losses), jnp.mean(accuracies)


@dataclasses.dataclass(frozen=True)
class ActionSpace:
    """The joint action of a DARTS space: ``op_ids`` the space indices of the action's
    operations, ``none`` the index of ``none`` in the space, ``edges`` per cell (14)."""

    op_ids: tuple[int, ...]
    none: int
    edges: int

    @classmethod
    def of(cls, space, include_none: bool) -> "ActionSpace":
        """The action over ``space.ops`` (with ``none`` when ``include_none``: DDAS's 8 ops;
        without: CADAM's 7)."""
        ops = tuple(space.ops)
        if "none" not in ops:
            raise ValueError(f"space.ops={ops} lacks 'none', which the supernet puts on the "
                             f"edges Alg. 2 leaves out; add it (first, as in DARTS_OPS).")
        ids = tuple(i for i, op in enumerate(ops) if include_none or op != "none")
        return cls(ids, ops.index("none"), len(space.edge_list))

    @property
    def shape(self) -> tuple[int, int, int]:
        return (len(KINDS), self.edges, len(self.op_ids))

    def discretize(self, action):
        """Alg. 2 per cell: float[2, 14, K'] -> one-hot float[2, 14, K']."""
        return discretize_darts(action)

    def path(self, one_hot) -> dict:
        """alpha^d [..., 2, 14, K'] -> ``{kind: int32[..., 14]}`` indexing the space's ops."""
        return self.path_of_ops(op_indices(one_hot))

    def path_of_ops(self, local) -> dict:
        """The action's op per edge int32[..., 2, 14] (-1 off the cell, ``op_indices``) -> the
        path ``{kind: int32[..., 14]}``."""
        ops = jnp.asarray(self.op_ids, jnp.int32)[jnp.maximum(local, 0)]
        codes = jnp.where(local < 0, self.none, ops)
        return {kind: codes[..., i, :] for i, kind in enumerate(KINDS)}


class Visited(NamedTuple):
    """``paths`` ``{kind: int32[Q, E]}``, ``accuracy`` and ``loss`` float32[Q] (val, accuracy in
    [0, 1]), ``params`` and ``flops`` float32[Q], ``size`` int32[] rows written."""

    paths: dict
    accuracy: jax.Array
    loss: jax.Array
    params: jax.Array
    flops: jax.Array
    size: jax.Array


def init_visited(arch_shapes: dict, capacity: int) -> Visited:
    """An empty record of ``capacity`` rows (Q) for paths of ``arch_shapes``."""
    rows = [jnp.zeros((capacity,), jnp.float32) for _ in range(4)]  # distinct buffers
    return Visited({kind: jnp.zeros((capacity, shape[0]), jnp.int32)
                    for kind, shape in arch_shapes.items()}, *rows, jnp.zeros((), jnp.int32))


def record(visited: Visited, path: dict, accuracy, loss, costs: tuple) -> Visited:
    """``visited`` with a row for ``path`` (dropped once full); ``costs`` = (params, flops)."""
    row, full = visited.size, visited.size >= visited.accuracy.shape[0]

    def put(rows, value):
        return jnp.where(full, rows, rows.at[row].set(jnp.asarray(value, rows.dtype)))

    params, flops = costs
    return Visited({kind: put(rows, path[kind]) for kind, rows in visited.paths.items()},
                   put(visited.accuracy, accuracy), put(visited.loss, loss),
                   put(visited.params, params), put(visited.flops, flops),
                   jnp.minimum(visited.size + 1, visited.accuracy.shape[0]))


def lookup(visited: Visited, path: dict) -> tuple[jax.Array, jax.Array]:
    """(bool[] whether ``path`` has a row, int32[] its first row)."""
    rows = jnp.arange(visited.accuracy.shape[0])
    same = rows < visited.size
    for kind, codes in visited.paths.items():
        same = same & jnp.all(codes == path[kind], axis=-1)
    return jnp.any(same), jnp.argmax(same).astype(jnp.int32)


def path_costs(space, num_classes: int, image_shape: tuple, path: dict,
               flops_per_mac: int = 2) -> tuple[jax.Array, jax.Array]:
    """(parameters, FLOPs) of ``path``'s discrete network, the space's own cells and width (DDAS
    counts 6-cell costs, spec 2.1 step 5), no auxiliary head, FLOPs = ``flops_per_mac`` x the
    multiply-adds (ambiguity 23: the thesis's FLOPS look like 2 x MACs)."""
    tables = cached_cost_tables(dataclasses.replace(space, auxiliary=False), num_classes,
                                tuple(image_shape))
    return tables["params"].cost(path), flops_per_mac * tables["macs"].cost(path)


@dataclasses.dataclass(frozen=True)
class FrozenSupernet:
    """CADAM's environment over fixed supernet weights (``jaxnas.blackbox.cadam.env_step``):
    ``query(one_hot, visited) -> (accuracy %, visited)``, evaluating only the architectures not
    in ``visited`` yet."""

    actions: ActionSpace
    space: Any
    net: Any
    mean: tuple
    std: tuple
    variables: dict
    eval_set: EvalSet
    bn: str
    flops_per_mac: int

    @property
    def arch_shape(self):
        return self.actions.shape

    def discretize(self, action):
        return self.actions.discretize(action)

    def query(self, one_hot, visited: Visited):
        path = self.actions.path(one_hot)
        hit, row = lookup(visited, path)

        def fresh():
            loss, accuracy = evaluate(self.net, self.mean, self.std, self.variables, path,
                                      self.eval_set, self.bn)
            costs = path_costs(self.space, self.net.num_classes, self.eval_set.image.shape[2:],
                               path, self.flops_per_mac)
            return 100.0 * accuracy, record(visited, path, accuracy, loss, costs)

        def cached():
            return 100.0 * visited.accuracy[row], visited

        return jax.lax.cond(hit, cached, fresh)
