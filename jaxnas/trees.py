"""Pytree helpers shared across jaxnas: stacking pytrees of one structure along a new leading
axis (for ``lax.scan`` and ``vmap`` over them) and indexing every leaf along that axis."""

import jax
import jax.numpy as jnp


def tree_stack(trees):
    """Pytrees of one structure -> one pytree whose leaves are stacked along a new axis 0."""
    return jax.tree.map(lambda *leaves: jnp.stack(leaves), *trees)


def tree_index(tree, i):
    """``leaf[i]`` for every leaf of ``tree``: an integer picks one entry along axis 0 (the
    ``i``-th of ``tree_stack``'s trees), an index array or slice several."""
    return jax.tree.map(lambda leaf: leaf[i], tree)
