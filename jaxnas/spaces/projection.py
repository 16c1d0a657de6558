"""The discretization as a projection (constrained DARTS's Pi_S, spec 003 section 2.1).

``project_cell`` maps a cell's activated weights ``a`` [E, K] to the nearest binary ``z`` in the
discretization set: per edge its strongest allowed operation, and per node the ``keep`` incoming
edges whose strongest operation is strongest; every other entry 0. With two active entries per
node, ``||a - z||^2 = ||a||^2 - 2 <a, z> + const``, so this maximizer of ``<a, z>`` is the
Euclidean projection. Ties go to the lower operation index and to the lower source node.
Jit-able; its output is piecewise constant, so it carries no gradient.
"""

from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np


def project_cell(weights, edges: Sequence[tuple[int, int]], allowed: Sequence[bool],
                 keep: int | None = 2):
    """``weights`` [E, K] (after activation) -> binary [E, K].

    Args:
      edges: the ``(src, dst)`` of the E edges, each node's incoming edges in source order.
      allowed: K flags, False for operations never chosen (``none``), or [E, K] flags per edge
        (a cell whose edges hold different operations).
      keep: edges kept per node; None keeps every edge (one operation each).
    """
    weights = jax.lax.stop_gradient(jnp.asarray(weights))
    allowed = np.asarray(allowed, bool)
    if weights.shape != (len(edges), allowed.shape[-1]) or allowed.shape[:-1] not in (
            (), (len(edges),)):
        raise ValueError(f"weights must have shape {(len(edges), allowed.shape[-1])} and allowed "
                         f"[K] or [E, K]; got weights {weights.shape}, allowed {allowed.shape}.")
    if not allowed.any(axis=-1).all():
        raise ValueError("No operation may be chosen on some edge: every operation is excluded.")
    masked = jnp.where(allowed, weights, -jnp.inf)
    best = jnp.argmax(masked, axis=-1)
    selected = jnp.zeros(len(edges), bool)
    for dst in sorted({d for _, d in edges}):
        incoming = np.array([e for e, (_, d) in enumerate(edges) if d == dst])
        if keep is None or keep >= len(incoming):
            chosen = incoming
        else:
            strength = jnp.max(masked[incoming], axis=-1)
            chosen = jnp.asarray(incoming)[jnp.argsort(-strength, stable=True)[:keep]]
        selected = selected.at[chosen].set(True)
    return jax.nn.one_hot(best, allowed.shape[-1], dtype=weights.dtype) * selected[:, None]
