"""The experience replay of DDAS and CADAM as a fixed-capacity pytree (a ring buffer), jit-able.

``Replay(items, size, next)``: ``items`` is any pytree of arrays with a leading capacity axis
[N, ...] (DDAS stores ``Transition(s, a, r, s')``, CADAM ``Transition(s, a, r)``); ``size``
int32[] counts the valid rows, which are the ``size`` rows written last, ending just before row
``next`` int32[] (the next row to write, cyclically). A full buffer overwrites its oldest row.

``sample`` draws with replacement (spec 2.1 step 4, ambiguity 17), uniformly over the valid rows
or over the newest ``newest`` of them only: the truncation of DDAS's Phase 4 (the replay "holds
only the last 500 steps") and of CADAM's DARTS search (the last 5k), without changing the buffer.
"""

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jaxnas.rl._checks import check_integer
from jaxnas.trees import tree_index


class Transition(NamedTuple):
    """One experience, or a batch [B, ...] of them: ``state`` float[..., *S], ``action``
    float[..., *A], ``reward`` float[...], and for DDAS's bootstrap ``next_state`` float[..., *S]
    (None for CADAM, whose critic does not bootstrap)."""

    state: Any
    action: Any
    reward: Any
    next_state: Any = None


class Replay(NamedTuple):
    """``items`` pytree of [N, ...] rows; ``size`` int32[] valid rows; ``next`` int32[] the row
    the next ``add`` writes."""

    items: Any
    size: jax.Array
    next: jax.Array


def init_replay(example: Any, capacity: int) -> Replay:
    """An empty buffer of ``capacity`` (N) rows shaped like ``example`` (one item, a pytree of
    arrays; its values are not stored)."""
    check_integer("The replay capacity", capacity, 1,
                  "DDAS keeps 10^6 transitions, CADAM on DARTS the last 5k")
    items = jax.tree.map(
        lambda x: jnp.zeros((capacity,) + jnp.shape(x), jnp.result_type(x)), example)
    return Replay(items, jnp.zeros((), jnp.int32), jnp.zeros((), jnp.int32))


def capacity(replay: Replay) -> int:
    """N, the number of rows (static)."""
    return jax.tree.leaves(replay.items)[0].shape[0]


def add(replay: Replay, item: Any) -> Replay:
    """``item`` written at row ``next``; a full buffer loses its oldest row."""
    rows = capacity(replay)
    if jax.tree.structure(item) != jax.tree.structure(replay.items):
        raise ValueError(f"replay.add needs an item with the buffer's structure "
                         f"{jax.tree.structure(replay.items)}, got {jax.tree.structure(item)}.")
    shapes = [(jnp.shape(x), b.shape[1:]) for x, b in
              zip(jax.tree.leaves(item), jax.tree.leaves(replay.items))]
    if any(got != want for got, want in shapes):
        raise ValueError(f"replay.add needs an item with the leaf shapes "
                         f"{[list(w) for _, w in shapes]} of the buffer, got "
                         f"{[list(g) for g, _ in shapes]}.")
    items = jax.tree.map(lambda b, x: b.at[replay.next].set(jnp.asarray(x, b.dtype)),
                         replay.items, item)
    return Replay(items, jnp.minimum(replay.size + 1, rows), (replay.next + 1) % rows)


def sample(key, replay: Replay, batch_size: int, newest=None) -> Any:
    """``batch_size`` items drawn uniformly with replacement from the valid rows, or from the
    ``newest`` most recent of them (an int, static or traced; all valid rows when fewer). Returns
    the ``items`` pytree with a leading [batch_size] axis. An empty buffer returns its zero rows:
    start sampling once ``size >= batch_size`` (CADAM, spec 2.3 step 8)."""
    check_integer("The replay batch size |B_R|", batch_size, 1, "64 in DDAS, 8 or 64 in CADAM")
    if newest is not None and not isinstance(newest, jax.Array):
        check_integer("newest (the replay's truncation)", newest, 1,
                      "DDAS's Phase 4 samples the newest 500 transitions")
    window = replay.size if newest is None else jnp.minimum(replay.size, newest)
    back = jax.random.randint(key, (batch_size,), 0, jnp.maximum(window, 1))
    rows = (replay.next - 1 - back) % capacity(replay)
    return tree_index(replay.items, rows)
