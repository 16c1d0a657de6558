"""Dominant eigenpair of a symmetric linear map (a Hessian) by power iteration."""

import jax
import jax.numpy as jnp
from jax import lax
from jax.flatten_util import ravel_pytree

from jaxnas.hypergrad._tree import tree_axpy, tree_norm, tree_scale, tree_vdot
from jaxnas.hypergrad.products import gradient_fn


def _normalize(x):
    norm = tree_norm(x)
    return tree_scale(1.0 / jnp.where(norm > 0, norm, 1.0), x)


def power_iteration(matvec, v0, iters):
    """Eigenpair of largest `|lambda|` of a symmetric `matvec`, from the start vector `v0` (pytree).

    Returns `(eigenvalue, eigenvector, info)`: the Rayleigh quotient `<v, A v>` at the unit
    vector `v` reached after `iters` steps, `v`, and `info` with `hvps` (= `iters + 1`) and
    `residual_norm` (`||A v - eigenvalue v||`, small once converged). Convergence is geometric in
    `|lambda_2 / lambda_1|`; the sign of the eigenvalue is kept (a Hessian may be indefinite).
    """
    v = _normalize(v0)

    def body(_, carry):
        _, av = carry
        v = _normalize(av)
        return v, matvec(v)

    v, av = lax.fori_loop(0, iters, body, (v, matvec(v)))
    eigenvalue = tree_vdot(v, av)
    info = {
        "hvps": jnp.int32(iters + 1),
        "residual_norm": tree_norm(tree_axpy(-eigenvalue, v, av)),
    }
    return eigenvalue, v, info


def top_hessian_eigenvalue(loss, params, *args, key, iters=100, has_aux=False):
    """Dominant eigenpair of `d2 loss(params, *args) / dparams2` for a pytree `params`.

    The gradient is linearized once and each iteration applies the linear map (one HVP). Starts
    from a standard normal vector drawn with `key`. Returns `power_iteration`'s `(eigenvalue, eigenvector,
    info)`. Example: the alpha-Hessian of a validation loss, `top_hessian_eigenvalue(
    lambda a, w, batch: loss(w, a, batch), alpha, w, batch, key=key)`.
    """
    grad = gradient_fn(loss, 0, has_aux)
    _, hessian_vp = jax.linearize(lambda p: grad(p, *args), params)
    flat, unravel = ravel_pytree(params)
    v0 = unravel(jax.random.normal(key, flat.shape, flat.dtype))
    return power_iteration(hessian_vp, v0, iters)
