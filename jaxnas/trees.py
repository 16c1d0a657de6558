"""Pytree helpers shared by the spaces and the strategies: stacking pytrees of one structure
along a new leading axis (for ``lax.scan`` and ``vmap`` over them) and slicing them back."""

import jax
import jax.numpy as jnp


def tree_stack(trees):
    """Pytrees of one structure -> one pytree whose leaves are stacked along a new axis 0."""
    return jax.tree.map(lambda *leaves: jnp.stack(leaves), *trees)


def tree_index(tree, i):
    """Slice ``i`` along axis 0 of every leaf of ``tree`` (the ``i``-th of ``tree_stack``'s)."""
    return jax.tree.map(lambda leaf: leaf[i], tree)
