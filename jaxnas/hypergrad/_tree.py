"""Vector-space arithmetic on pytrees of arrays: the vectors that the solvers iterate on.

Every result keeps the dtype of the pytree it updates, so loop carries keep their types when a
scalar of a wider dtype (a float64 step size on float32 weights, say) enters the update.
"""

import functools
import operator

import jax
import jax.numpy as jnp
from jax import lax


def tree_vdot(x, y):
    """Sum over leaves of `<x_leaf, y_leaf>` (full-precision dot products) -> scalar."""
    dots = [
        jnp.vdot(a, b, precision=lax.Precision.HIGHEST)
        for a, b in zip(jax.tree.leaves(x), jax.tree.leaves(y))
    ]
    return functools.reduce(operator.add, dots) if dots else jnp.zeros(())


def tree_norm(x):
    """Global Euclidean norm of a pytree -> scalar."""
    return jnp.sqrt(tree_vdot(x, x))


def tree_axpy(a, x, y):
    """`a * x + y` leafwise for a scalar `a`; dtypes of `y`."""
    return jax.tree.map(lambda xi, yi: (yi + a * xi).astype(yi.dtype), x, y)


def tree_scale(a, x):
    """`a * x` leafwise for a scalar `a`; dtypes of `x`."""
    return jax.tree.map(lambda xi: (a * xi).astype(xi.dtype), x)


def tree_sub(x, y):
    """`x - y` leafwise."""
    return jax.tree.map(operator.sub, x, y)
