"""E²NAS's architecture complementation against multi-model forgetting (Zhang thesis Sec. 4.3.2,
Fig. 4.2 and Eq. 4.12; spec 002 section 3): each weight step also trains the previous
architecture alpha_{i-1} and a complementary alpha_i^c that shares no weights with it.

For cells with an operation on every edge (NAS-Bench-201: op indices int [6] in ``NB201_OPS``
order), an edge's weights are those of its ``(edge, op)``. Fig. 4.2's rule, edge by edge: where
alpha_i holds the same operation as alpha_{i-1}, alpha_i^c takes a uniformly random *other*
operation; elsewhere it takes alpha_i's. Then alpha_i's weights lie in alpha_{i-1}'s or
alpha_i^c's (coverage) and alpha_{i-1} and alpha_i^c share none (disjointness). The thesis words
the rule by a node's input; on a cell where every edge is present, the spec's op rule (3.6) is
the reading that keeps both invariants, and the authors' NB201 code does the same.
"""

import numbers

import jax
import jax.numpy as jnp


def complementary_ops(key, current, previous, num_ops: int) -> jax.Array:
    """alpha_i^c of Fig. 4.2: op indices int [..., E] of alpha_i (``current``) and alpha_{i-1}
    (``previous``) -> int32 [..., E], another op drawn uniformly where the two agree, alpha_i's
    op elsewhere."""
    if isinstance(num_ops, bool) or not isinstance(num_ops, numbers.Integral) or num_ops < 2:
        raise ValueError(f"num_ops must be an integer >= 2 (a different operation must exist), "
                         f"got {num_ops!r}.")
    current, previous = jnp.asarray(current), jnp.asarray(previous)
    if current.shape != previous.shape:
        raise ValueError(f"The current and previous architectures have op indices of shapes "
                         f"{current.shape} and {previous.shape}; they must match (one op per "
                         "edge of the same cell).")
    draw = jax.random.randint(key, current.shape, 0, num_ops - 1)
    other = draw + (draw >= previous)  # uniform over the num_ops - 1 ops other than previous
    return jnp.where(current == previous, other, current).astype(jnp.int32)


def complementation_weights(epsilon: float = 0.5) -> tuple[float, float, float]:
    """Eq. 4.12's coefficients of the losses of (alpha_i, alpha_i^c, alpha_{i-1}):
    ``(1 - epsilon, epsilon, epsilon)`` (the spec's epsilon = 0.5)."""
    if (isinstance(epsilon, bool) or not isinstance(epsilon, numbers.Real)
            or not 0.0 <= epsilon <= 1.0):
        raise ValueError(f"epsilon (the replay's share in Eq. 4.12) must be a real number in "
                         f"[0, 1], got {epsilon!r}.")
    return 1.0 - epsilon, epsilon, epsilon


def complementation_loss(current, complement, previous, regularizer=0.0, epsilon: float = 0.5,
                         eta: float = 0.0) -> jax.Array:
    """Eq. 4.12, ``(1 - eps) L(w_i) + eps (L(w_i^c) + L(w_{i-1})) + eta R(w_i)``, from the
    training cross-entropies [] of alpha_i, alpha_i^c and alpha_{i-1} on one batch and
    ``regularizer`` R(w_i) [] (an l2 norm of alpha_i's weights). Leave eta at 0 when the weight
    optimizer's weight decay already is the l2 term."""
    w_current, w_complement, w_previous = complementation_weights(epsilon)
    return (w_current * current + w_complement * complement + w_previous * previous
            + eta * regularizer)
