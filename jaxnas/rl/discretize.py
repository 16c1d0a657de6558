"""The many-to-one maps from a continuous action to a one-hot architecture (spec 001 section 2.0),
jit-able and batched over leading dimensions.

- ``discretize_darts``: Alg. 2, per DARTS cell. Rows ``NODE_OFFSETS[k]:NODE_OFFSETS[k+1]`` of
  alpha float[..., 14, K] are the incoming edges of intermediate node k (sources c_{k-2}, c_{k-1},
  n_0, ...; the DARTS genotype order). Per node: the row holding the largest entry, then the row
  holding the largest entry among the other rows, each with its argmax operation. So a node keeps
  the 2 edges of largest max-op weight, from distinct rows; ``none`` (op 0 in the DARTS order) is
  not excluded (ambiguity 2) and may sit on an active edge. Eight ones per cell.
- ``discretize_nb201``: Alg. 3, the argmax of each of the 6 rows.

Ties go to the lower index, row-major, as ``argmax`` over the flattened node block in Alg. 2
(``jax.lax.top_k`` and ``jnp.argmax`` both keep the lower index). Both return float one-hot
``alpha^d`` of alpha's shape; apply them per cell to the joint DARTS action [..., 2, 14, K]
(ambiguity 3) by passing it as is.
"""

import jax
import jax.numpy as jnp

NODE_OFFSETS = (0, 2, 5, 9, 14)  # first row of each intermediate node's edges, then the end
DARTS_NUM_EDGES = NODE_OFFSETS[-1]
NB201_NUM_EDGES = 6


def discretize_darts(alpha: jax.Array) -> jax.Array:
    """Alg. 2: alpha float[..., 14, K] -> one-hot float[..., 14, K], two active rows per node."""
    alpha = jnp.asarray(alpha)
    _check_ops("discretize_darts: alpha", alpha.shape, DARTS_NUM_EDGES,
               "14 DARTS edges, then the operations; batch or cell dimensions in front")
    blocks = []
    for start, end in zip(NODE_OFFSETS[:-1], NODE_OFFSETS[1:]):
        block = alpha[..., start:end, :]
        _, rows = jax.lax.top_k(jnp.max(block, axis=-1), 2)  # [..., 2], distinct, ties lower
        keep = jnp.any(jnp.arange(end - start)[:, None] == rows[..., None, :], axis=-1)
        blocks.append(jnp.where(keep[..., None], _row_one_hot(block), 0))
    return jnp.concatenate(blocks, axis=-2).astype(_float_dtype(alpha))


def discretize_nb201(alpha: jax.Array) -> jax.Array:
    """Alg. 3: alpha float[..., 6, K] -> one-hot float[..., 6, K], the argmax of every row."""
    alpha = jnp.asarray(alpha)
    _check_ops("discretize_nb201: alpha", alpha.shape, NB201_NUM_EDGES,
               "6 NAS-Bench-201 edges in arch-string order, then the operations")
    return _row_one_hot(alpha).astype(_float_dtype(alpha))


def op_indices(one_hot: jax.Array, inactive: int = -1) -> jax.Array:
    """One-hot float[..., E, K] -> int32[..., E]: each edge's operation, ``inactive`` on edges
    with no one (pass ``inactive=0``, the none operation, for the library's path convention,
    ``jaxnas.strategies.novelty``; -1 keeps an active none apart from an unused edge)."""
    one_hot = jnp.asarray(one_hot)
    return jnp.where(jnp.any(one_hot > 0, axis=-1), jnp.argmax(one_hot, axis=-1),
                     inactive).astype(jnp.int32)


def num_differing_pairs(a: jax.Array, b: jax.Array) -> jax.Array:
    """int32[]: the active (edge, op) pairs of one-hot ``a`` that ``b`` does not have, over all
    dimensions (DDAS-4S's similarity, ambiguity 12: of the 16 pairs of a joint DARTS action
    [2, 14, K]; similar when < 6). ``jax.vmap`` it over a batch."""
    if jnp.shape(a) != jnp.shape(b):
        raise ValueError(f"num_differing_pairs compares architectures of one shape, got "
                         f"{list(jnp.shape(a))} and {list(jnp.shape(b))}.")
    return jnp.sum((jnp.asarray(a) > 0) & ~(jnp.asarray(b) > 0)).astype(jnp.int32)


def _row_one_hot(x):
    return jax.nn.one_hot(jnp.argmax(x, axis=-1), x.shape[-1], dtype=jnp.bool_)


def _float_dtype(x):
    return x.dtype if jnp.issubdtype(x.dtype, jnp.floating) else jnp.float32


def _check_ops(name, shape, edges, hint):
    if len(shape) < 2 or shape[-2] != edges or shape[-1] < 1:
        raise ValueError(f"{name} must have shape [..., {edges}, K] with K >= 1 operations "
                         f"({hint}), got {list(shape)}.")
