"""Which supernet variables a single path uses, and masks that confine an update to them.

A single-path weight step must leave the variables of the operations it did not run exactly as
they were (PyTorch's SGD skips parameters without a gradient; an optax update would still apply
weight decay and momentum to them). ``op_owners`` maps each parameter of a supernet to the
``(arch key, edge, operation)`` it belongs to (None for the shared stem, preprocessing,
reduction blocks and classifier); ``path_mask`` turns a path's operation indices into a
boolean per parameter; ``select`` keeps the old parameters and optimizer state where the mask is
False.
"""

import jax
import jax.numpy as jnp

from jaxnas.spaces.cells import edge_name


def op_owners(space, params) -> dict:
    """A tree like ``params`` whose leaves are ``(key, edge, op)`` index triples or None (host
    side, static: computed from the parameter paths ``<cell>/.../edge_{dst}_{src}/<op>/...``)."""
    if not getattr(space, "uniform", True):
        raise ValueError("A single-path weight step needs the same candidates on every edge; "
                         "this DARTS space has space.reduce_ops or space.edge_ops.")
    edge_index = {edge_name(src, dst): e for e, (src, dst) in enumerate(space.edge_list)}
    op_index = {name: k for k, name in enumerate(space.ops)}

    def owner(path, _):
        names = [getattr(p, "key", str(p)) for p in path]
        kind = space.cell_kind(names[0])
        if kind is None:
            return None
        for i, name in enumerate(names[:-1]):
            if name in edge_index and names[i + 1] in op_index:
                return (kind, edge_index[name], op_index[names[i + 1]])
        return None

    return jax.tree_util.tree_map_with_path(owner, params)


def path_codes(arch_weights: dict) -> dict:
    """Operation indices ``{key: int32 [E]}`` of a path given as indices or as one-hot (or
    straight-through) weights ``{key: [E, K]}``."""
    return {k: (jnp.argmax(w, -1) if jnp.ndim(w) == 2 else w).astype(jnp.int32)
            for k, w in arch_weights.items()}


def path_mask(owners: dict, codes: dict) -> dict:
    """A boolean scalar per parameter: shared, or the operation its edge chose in ``codes``."""
    return jax.tree.map(lambda owner: jnp.bool_(True) if owner is None
                        else codes[owner[0]][owner[1]] == owner[2],
                        owners, is_leaf=lambda x: x is None or isinstance(x, tuple))


def select(mask: dict, new, old):
    """``new`` where ``mask`` is True, ``old`` elsewhere, for the parameters and for every
    subtree of an optimizer state shaped like them (momentum buffers); other leaves (update
    counts) come from ``new``."""
    structure = jax.tree.structure(mask)
    like_params = lambda t: jax.tree.structure(t) == structure  # noqa: E731

    def pick(n, o):
        if like_params(n):
            return jax.tree.map(lambda m, a, b: jnp.where(m, a, b), mask, n, o)
        return n

    return jax.tree.map(pick, new, old, is_leaf=like_params)
