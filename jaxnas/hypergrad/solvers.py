"""Matrix-free linear solvers for `A x = b` with `A` symmetric, given as `matvec(x) -> A x`.

`x` and `b` are pytrees of the same structure. Each solver returns `(x, info)` with `info` a dict
of scalars; `hvps` counts the `matvec` applications. All run on device (no host syncs).
"""

import jax
import jax.numpy as jnp
from jax import lax
from jax.flatten_util import ravel_pytree

from jaxnas.hypergrad._tree import tree_axpy, tree_norm, tree_scale, tree_vdot


def cg(matvec, b, maxiter, tol, damping=0.0):
    """Conjugate gradients for `(A + damping I) x = b` with `A` positive definite, from `x0 = 0`.

    Iterates until the recursively updated residual satisfies `||r|| <= tol * ||b||`, for at most
    `maxiter` iterations (one matvec each), or until breakdown: a search direction with
    `p^T A p <= 0` (non-positive curvature) or NaN, where the iterate before that step is kept.
    The residual reported is then recomputed as `b - (A + damping I) x` (one more matvec), so the
    flags describe the returned `x` even where the recursion has drifted (low precision).
    `info`: `iterations`, `hvps` (= `iterations + 1`), `residual_norm`
    (`||b - (A + damping I) x||`), `relative_residual` (`residual_norm / ||b||`), `converged`
    (`residual_norm <= tol * ||b||`), `breakdown`.
    """
    b_norm = tree_norm(b)
    threshold = tol * b_norm

    def operator(p):
        return tree_axpy(damping, p, matvec(p))

    def cond(state):
        _, _, _, rs, k, breakdown = state
        return (k < maxiter) & (jnp.sqrt(rs) > threshold) & ~breakdown

    def body(state):
        x, r, p, rs, k, _ = state
        ap = operator(p)
        curvature = tree_vdot(p, ap)
        breakdown = ~(curvature > 0)
        step = jnp.where(breakdown, 0.0, rs / jnp.where(breakdown, 1.0, curvature))
        x = tree_axpy(step, p, x)
        r = tree_axpy(-step, ap, r)
        rs_new = tree_vdot(r, r)
        p = tree_axpy(rs_new / rs, p, r)
        return x, r, p, rs_new, k + 1, breakdown

    x0 = jax.tree.map(jnp.zeros_like, b)
    init = (x0, b, b, tree_vdot(b, b), jnp.int32(0), jnp.asarray(False))
    x, _, _, _, iterations, breakdown = lax.while_loop(cond, body, init)
    residual = tree_norm(tree_axpy(-1.0, operator(x), b))
    info = {
        "iterations": iterations,
        "hvps": iterations + 1,
        "residual_norm": residual,
        "relative_residual": residual / jnp.where(b_norm > 0, b_norm, 1.0),
        "converged": residual <= threshold,
        "breakdown": breakdown,
    }
    return x, info


def neumann_series(matvec, v, lr, terms):
    """`u = lr * sum_{k=0..terms} (I - lr A)^k v`, a truncated Neumann series for `A^-1 v`.

    Converges as `terms -> inf` iff `0 < lr * lambda < 2` for every eigenvalue of `A`.
    `info`: `hvps` (= `terms`), `last_term_norm` (`||lr (I - lr A)^terms v||`; a value that does
    not shrink with `terms` means the series diverges). The `terms` products are unrolled, not
    looped: XLA's CPU backend runs the convolutions of a network up to 30x slower inside a loop
    body (jax-ml/jax#12868), and `terms` is small in practice.
    """
    p = total = v
    for _ in range(terms):
        p = tree_axpy(-lr, matvec(p), p)
        total = tree_axpy(1.0, p, total)
    info = {"hvps": jnp.int32(terms), "last_term_norm": lr * tree_norm(p)}
    return tree_scale(lr, total), info


def dense_solve(matvec, b):
    """Materializes `A` (`n` matvecs, `n` = size of `b`) and solves `A x = b` by LU.

    `info`: `hvps` (= `n`), `residual_norm` (`||A x - b||`). Memory `O(n^2)`: small problems only.
    """
    flat_b, unravel = ravel_pytree(b)

    def flat_matvec(x):
        return ravel_pytree(matvec(unravel(x)))[0]

    # Row i of the vmapped result is A e_i, column i of A.
    matrix = jax.vmap(flat_matvec)(jnp.eye(flat_b.size, dtype=flat_b.dtype)).T
    x = jnp.linalg.solve(matrix, flat_b)
    residual = jnp.matmul(matrix, x, precision=lax.Precision.HIGHEST) - flat_b
    info = {"hvps": jnp.int32(flat_b.size), "residual_norm": jnp.linalg.norm(residual)}
    return unravel(x), info
