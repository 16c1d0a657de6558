"""Single-path architectures ("paths"): uniform sampling, mutation, one-hot weights, genotypes.

A path is ``{cell_key: int32[E]}``, one operation index per edge of that cell type, with the
keys and ``[E, K]`` shapes of ``space.arch_shapes()``. Valid paths:

- ``NB201Space`` (key ``"cell"``): any operation on any of the 6 edges, ``K^6`` paths.
- ``DartsSpace`` (keys ``"normal"``, ``"reduce"``): each intermediate node uses exactly 2 of its
  incoming edges (so 2 distinct sources), each with an operation other than ``none``; the
  unused edges hold the index of ``none``. With ``edges="fixed"`` every edge is used.

Mutation makes one move, always to a different valid path. It follows regularized evolution
(Real et al. 2019) as NAS-Bench-201's REA baseline implements it:

- op move: a node uniformly, one of its used incoming edges uniformly, and a different
  operation uniformly (NB201: any other op; DARTS: any other op but ``none``). NB201 has only
  this move, so an edge of node 1, 2 or 3 is hit with probability 1/3, 1/6 or 1/9.
- input move (DARTS, ``edges="all"``): a node that has an unused source (nodes 3..5)
  uniformly, one of its two used edges uniformly, moved with its op to a source the node does not
  use yet, uniformly (Real et al.'s hidden-state mutation, keeping the sources distinct).

A DARTS mutation picks the cell (normal or reduce) uniformly, then the op move or the input move
with equal probability (the fixed-edge cell has only op moves; ops with a single entry other than
``none`` only input moves).

``sample_path``, ``mutate_path`` and ``path_weights`` are jitted with the space static; they
vmap over keys. ``path_genotype`` and ``path_key`` run on the host. A space whose ops admit no
valid path (or, for ``mutate_path``, no second one) raises a ValueError that says what to add.
"""

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxnas.spaces.genotypes import NB201_EDGES
from jaxnas.spaces.space import DartsSpace, NB201Space


class _Cell(NamedTuple):
    """The valid paths of one cell type. ``dst``: the node each edge enters; ``keep``: the edges a
    node uses (None: all); ``choices``: the op indices a used edge may hold; ``none``: the op
    index an unused edge holds (None when every edge is used)."""

    dst: tuple[int, ...]
    keep: int | None
    choices: tuple[int, ...]
    none: int | None

    def used(self, cell):
        """bool[E]: the edges ``cell`` (int32[E]) uses."""
        return jnp.ones(len(self.dst), bool) if self.none is None else cell != self.none


def _cells(space) -> dict[str, _Cell]:
    """The ``_Cell`` of each path key of ``space``; a ValueError when its ops allow no path."""
    ops = tuple(space.ops)
    if isinstance(space, NB201Space):
        if not ops:
            raise ValueError("The NB201 space has no operations (space.ops is empty); a path "
                             "needs at least one.")
        return {"cell": _Cell(tuple(d for _, d in NB201_EDGES), None, tuple(range(len(ops))),
                              None)}
    if isinstance(space, DartsSpace):
        if not space.uniform:
            raise ValueError("Single paths need the same candidates on every edge of a DARTS "
                             "space; this one has space.reduce_ops or space.edge_ops. Leave them "
                             "empty for a single-path search.")
        choices = tuple(i for i, op in enumerate(ops) if op != "none")
        if not choices:
            raise ValueError(f"space.ops={ops} has no operation other than 'none'; a DARTS path "
                             f"puts one on every edge it uses.")
        keep = space.inputs_per_node
        if keep is not None and "none" not in ops:
            raise ValueError(f"space.ops={ops} lacks 'none', which a DARTS path puts on the edges "
                             f"it does not use (each node uses 2 of its inputs); add 'none' to "
                             f"space.ops or use space.edges='fixed'.")
        cell = _Cell(tuple(d for _, d in space.edge_list), keep, choices,
                     None if keep is None else ops.index("none"))
        return {"normal": cell, "reduce": cell}
    raise TypeError(f"Paths are defined for NB201Space and DartsSpace, got "
                    f"{type(space).__name__}.")


@functools.partial(jax.jit, static_argnums=0)
def sample_path(space, key) -> dict:
    """A path drawn uniformly from the valid paths of ``space``: ``{key: int32[E]}``."""
    cells = _cells(space)
    keys = jax.random.split(key, len(cells))
    return {name: _sample_cell(k, cell) for k, (name, cell) in zip(keys, sorted(cells.items()))}


def _sample_cell(key, cell: _Cell):
    k_edges, k_ops = jax.random.split(key)
    choices = jnp.asarray(cell.choices, jnp.int32)
    ops = choices[jax.random.randint(k_ops, (len(cell.dst),), 0, len(choices))]
    if cell.keep is None:
        return ops
    # A uniform random order of all edges orders each node's edges uniformly and independently;
    # a node keeps its first `keep`.
    order = jax.random.permutation(k_edges, len(cell.dst))
    same_node = np.equal.outer(cell.dst, cell.dst)
    rank = jnp.sum(same_node & (order[None, :] < order[:, None]), axis=1)
    return jnp.where(rank < cell.keep, ops, cell.none)


@functools.partial(jax.jit, static_argnums=0)
def mutate_path(space, key, path: dict) -> dict:
    """``path`` changed by one move (module docstring): a different valid path, same shapes."""
    cells = _cells(space)
    names = sorted(cells)
    k_cell, *keys = jax.random.split(key, len(names) + 1)
    target = jax.random.randint(k_cell, (), 0, len(names))
    return {name: jnp.where(target == i, _mutate_cell(k, cells[name], path[name]), path[name])
            for i, (name, k) in enumerate(zip(names, keys))}


def _mutate_cell(key, cell: _Cell, path):
    moves = []
    if len(cell.choices) > 1:
        moves.append(_op_move)
    if cell.keep is not None and _input_nodes(cell):
        moves.append(_input_move)
    if not moves:
        raise ValueError(f"A path of this space has no neighbour to mutate to: every edge is "
                         f"used and can only hold the op at index {cell.choices[0]} of "
                         f"space.ops; add another operation (other than 'none') to space.ops.")
    k_move, *keys = jax.random.split(key, len(moves) + 1)
    children = jnp.stack([move(k, cell, path) for move, k in zip(moves, keys)])
    return children[jax.random.randint(k_move, (), 0, len(moves))]


def _op_move(key, cell: _Cell, path):
    k_node, k_edge, k_op = jax.random.split(key, 3)
    edge = _uniform_among(k_edge, _node_mask(k_node, cell, sorted(set(cell.dst)))
                          & cell.used(path))
    choices = jnp.asarray(cell.choices, jnp.int32)
    current = jnp.argmax(choices == path[edge])
    other = jax.random.randint(k_op, (), 0, len(choices) - 1)
    return path.at[edge].set(choices[other + (other >= current)])


def _input_move(key, cell: _Cell, path):
    k_node, k_old, k_new = jax.random.split(key, 3)
    into = _node_mask(k_node, cell, _input_nodes(cell))
    used = cell.used(path)
    old = _uniform_among(k_old, into & used)
    new = _uniform_among(k_new, into & ~used)
    return path.at[new].set(path[old]).at[old].set(cell.none)


def _input_nodes(cell: _Cell) -> list[int]:
    """The nodes with more incoming edges than they use."""
    return [d for d in sorted(set(cell.dst)) if cell.dst.count(d) > cell.keep]


def _node_mask(key, cell: _Cell, nodes: list[int]):
    """bool[E]: the edges into one of ``nodes``, drawn uniformly."""
    node = jnp.asarray(nodes)[jax.random.randint(key, (), 0, len(nodes))]
    return jnp.asarray(cell.dst) == node


def _uniform_among(key, mask):
    """A uniformly drawn index of a True entry of ``mask`` (bool[E], not all False)."""
    return jax.random.categorical(key, jnp.where(mask, 0.0, -jnp.inf))


@functools.partial(jax.jit, static_argnums=0)
def path_weights(space, path: dict) -> dict:
    """One-hot architecture weights of ``path``: ``{key: float32[E, K]}``, the supernet's
    ``arch_weights``."""
    return {name: jax.nn.one_hot(path[name], shape[1], dtype=jnp.float32)
            for name, shape in space.arch_shapes().items()}


def path_genotype(space, path: dict):
    """The genotype of ``path``: ``space.derive`` of its one-hot weights. In the DARTS space the
    derivation keeps the 2 strongest non-``none`` edges of each node, which are exactly the edges
    the path uses (weight 1 against 0), listed in ``space.edge_list`` order within a node."""
    return space.derive(jax.device_get(path_weights(space, path)))


def path_key(path: dict) -> tuple[int, ...]:
    """A hashable host-side key of ``path``: its op indices, cells in sorted key order."""
    return tuple(np.concatenate([np.ravel(path[name]) for name in sorted(path)]).tolist())
