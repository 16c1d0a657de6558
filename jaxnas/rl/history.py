"""CADAM's state (spec 001 section 2.3 step 4, ambiguity 18): the top-K discretized architectures
seen so far, by reward, and their element-wise mean, as a fixed-size pytree; jit-able.

``TopKHistory(archs [K, *arch], scores [K], size)``: rows ``[0, size)`` are members, sorted by
score, best first; the rest are zero with score ``EMPTY`` (the lowest float32: finite, so a
checkpointed search state holds no infinity). ``insert`` adds an architecture where it
ranks, after the members of equal score (ties go to the earlier entry), dropping the K-th when
full; an architecture already among the members is not added again (duplicates would collapse
the state; its score is kept). Once evicted, an architecture cannot re-enter at the same score,
so the members are always the K best distinct architectures seen, first-seen winning ties.

``history_state`` is s_t: s[e, o] = the fraction of members using op o on edge e (the "channel-
wise averaging" of h_t); with fewer than K members it averages over the members (ambiguity 18's
choice; ``over="capacity"`` divides the sum by K instead); empty, it is 0 (ambiguity 11, s_0 = 0).
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxnas.rl._checks import check_integer

EMPTY = float(np.finfo(np.float32).min)  # the score of a row past ``size``


class TopKHistory(NamedTuple):
    """``archs`` float[K, *arch] (one-hot alpha^d), ``scores`` float32[K] (best first, ``EMPTY`` past
    ``size``), ``size`` int32[]."""

    archs: jax.Array
    scores: jax.Array
    size: jax.Array


def init_history(arch_shape, k: int, dtype=jnp.float32) -> TopKHistory:
    """An empty history of ``k`` (K) architectures of ``arch_shape`` (e.g. (6, 5), (2, 14, 7))."""
    check_integer("K (the top-K history size)", k, 1, "64 on NB201, 500 on DARTS in CADAM")
    return TopKHistory(jnp.zeros((k,) + tuple(arch_shape), dtype),
                       jnp.full((k,), EMPTY, jnp.float32), jnp.zeros((), jnp.int32))


def insert(history: TopKHistory, arch: jax.Array, score) -> TopKHistory:
    """``arch`` with ``score`` (e.g. the accuracy or 100^acc) placed by rank; unchanged when it
    is a member already, ranks below K members, or its score is NaN."""
    k = history.scores.shape[0]
    if jnp.shape(arch) != history.archs.shape[1:]:
        raise ValueError(f"insert needs an architecture of the history's shape "
                         f"{list(history.archs.shape[1:])}, got {list(jnp.shape(arch))}.")
    arch = jnp.asarray(arch, history.archs.dtype)
    score = jnp.asarray(score, jnp.float32)
    rows = jnp.arange(k)
    member = rows < history.size
    same = jnp.all((history.archs == arch).reshape(k, -1), axis=-1)
    position = jnp.sum(member & (history.scores >= score))
    enters = (position < k) & ~jnp.any(member & same) & ~jnp.isnan(score)

    def shifted(values, new):
        below = jnp.roll(values, 1, axis=0)  # row i holds row i - 1
        at = (rows == position).reshape((k,) + (1,) * (values.ndim - 1))
        after = (rows > position).reshape(at.shape)
        moved = jnp.where(at, new, jnp.where(after, below, values))
        return jnp.where(enters, moved, values)

    return TopKHistory(shifted(history.archs, arch), shifted(history.scores, score),
                       history.size + (enters & (history.size < k)).astype(jnp.int32))


def history_state(history: TopKHistory, over: str = "members") -> jax.Array:
    """s_t float[*arch]: the sum of the member architectures divided by the number of members
    (``over="members"``) or by K (``over="capacity"``); 0 while empty."""
    if over not in ("members", "capacity"):
        raise ValueError(f"history_state's over must be 'members' (the mean of the members) or "
                         f"'capacity' (their sum / K), got {over!r}.")
    k = history.scores.shape[0]
    mask = (jnp.arange(k) < history.size).reshape((k,) + (1,) * (history.archs.ndim - 1))
    total = jnp.sum(jnp.where(mask, history.archs, 0), axis=0)
    count = jnp.maximum(history.size, 1) if over == "members" else k
    return (total / count).astype(history.archs.dtype)
