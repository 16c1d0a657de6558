"""E²NAS's architecture complementation against multi-model forgetting (Zhang thesis Sec. 4.3.2,
Fig. 4.2 and Eq. 4.12; spec 002 section 3): each weight step also trains the previous
architecture alpha_{i-1} and a complementary alpha_i^c that shares no weights with it.

Cells are single paths (``jaxnas.spaces.paths``: one op index per edge; in the DARTS space the
edges a cell does not use hold ``none``), and an edge's weights are those of its ``(edge, op)``.
Fig. 4.2's rule, edge by edge: where alpha_i holds the same operation as alpha_{i-1}, alpha_i^c
takes a uniformly random *other* operation (never ``none``); elsewhere, unused edges included, it
takes alpha_i's. Then alpha_i's weights lie in alpha_{i-1}'s or alpha_i^c's (coverage),
alpha_{i-1} and alpha_i^c share none (disjointness), and alpha_i^c uses alpha_i's edges, so it is
a valid path. The thesis words the rule by a node's input: an operation of alpha_i whose input
alpha_{i-1} also reads sits on an edge both use. Where the two operations there differ, the
spec's op rule (3.6) keeps alpha_i's, the reading that keeps both invariants; the authors' NB201
code does the same.
"""

import numbers

import jax
import jax.numpy as jnp


def complementary_ops(key, current, previous, num_ops: int,
                      none: int | None = None) -> jax.Array:
    """alpha_i^c of Fig. 4.2: op indices int [..., E] of alpha_i (``current``) and alpha_{i-1}
    (``previous``) among ``num_ops`` -> int32 [..., E]: where the two hold the same operation,
    another drawn uniformly (not ``none``, the index unused edges hold, if given); alpha_i's op
    elsewhere."""
    integer = isinstance(num_ops, numbers.Integral) and not isinstance(num_ops, bool)
    allowed = [i for i in range(num_ops) if i != none] if integer else []
    if len(allowed) < 2:
        raise ValueError(f"num_ops must be an integer with at least 2 operations other than "
                         f"none={none!r} (a different operation must exist), got {num_ops!r}.")
    current, previous = jnp.asarray(current), jnp.asarray(previous)
    if current.shape != previous.shape:
        raise ValueError(f"The current and previous architectures have op indices of shapes "
                         f"{current.shape} and {previous.shape}; they must match (one op per "
                         "edge of the same cell).")
    allowed = jnp.asarray(allowed, jnp.int32)
    draw = jax.random.randint(key, current.shape, 0, len(allowed) - 1)
    position = jnp.argmax(allowed == previous[..., None], -1)
    other = allowed[draw + (draw >= position)]  # uniform over the allowed ops but previous
    return jnp.where((current == previous) & (current != (-1 if none is None else none)),
                     other, current).astype(jnp.int32)


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
