"""`hypergradient`: `d/dalpha L_outer(w*(alpha), alpha)`, `w*(alpha) = argmin_w L_inner(w, alpha)`.

The implicit methods (Neumann, ConjugateGradient, Exact, Amended) share one path: the outer
gradients `(v, g) = (grad_w, grad_alpha) L_outer` at `w`, the inner products at `w` (one
linearization of the inner gradient, or a jvp each: the method's `linearize`), an approximation
`x` of `H^-1 v` from the method, and `g - M^T x` (`Neumann(loop=True)`: `M^T x` summed over the
series' terms in one `lax.scan`). Unrolled differentiates through SGD steps by a
reverse recursion over the stored iterates.
"""

import jax
import jax.numpy as jnp
from jax import lax

from jaxnas.hypergrad import methods as m
from jaxnas.hypergrad._tree import tree_axpy, tree_norm, tree_scale, tree_sub
from jaxnas.hypergrad.products import central_difference, gradient_fn, hvp, linearize_inner
from jaxnas.hypergrad.solvers import cg, dense_solve, neumann_series


def _outer(outer_loss, w, alpha, batch, has_aux):
    """`(grad_w, grad_alpha, info)` of the outer loss at `(w, alpha)`; info: the loss (and aux)."""
    fn = outer_loss if has_aux else (lambda *a: (outer_loss(*a), None))
    (value, aux), (grad_w, grad_alpha) = jax.value_and_grad(fn, argnums=(0, 1), has_aux=True)(
        w, alpha, batch)
    info = {"outer_loss": value}
    if has_aux:
        info["aux"] = aux
    return grad_w, grad_alpha, info


def _first_order(method, inner_loss, outer_loss, w, alpha, inner_batch, outer_batch, has_aux):
    del method, inner_loss, inner_batch
    _, grad_alpha, info = _outer(outer_loss, w, alpha, outer_batch, has_aux)
    return grad_alpha, {"hvps": jnp.int32(0), **info}


def _unrolled(method, inner_loss, outer_loss, w, alpha, inner_batch, outer_batch, has_aux):
    # The steps are unrolled, not looped: XLA's CPU backend runs a network's convolutions up to
    # 30x slower inside a loop body (jax-ml/jax#12868), and `steps` is small in practice.
    lr = method.lr
    inner_grad_w = gradient_fn(inner_loss, 0, has_aux)
    inner_grads = gradient_fn(inner_loss, (0, 1), has_aux)

    def joint(w_t):
        return inner_grads(w_t, alpha, inner_batch)

    iterates = [w]
    for _ in range(method.steps):
        iterates.append(tree_axpy(-lr, inner_grad_w(iterates[-1], alpha, inner_batch),
                                  iterates[-1]))
    v, g, info = _outer(outer_loss, iterates.pop(), alpha, outer_batch, has_aux)
    for w_t in reversed(iterates):
        # Adjoint of w_{t+1} = w_t - lr grad_w L(w_t): v <- (I - lr H_t) v, g <- g - lr M_t^T v.
        if method.hvp == "exact":
            (hv, mv), radius = jax.jvp(joint, (w_t,), (v,))[1], None
        else:
            (hv, mv), radius = central_difference(joint, w_t, v, method.eps)
        v, g = tree_axpy(-lr, hv, v), tree_axpy(-lr, mv, g)
    info["hvps"] = jnp.int32(method.steps - 1)
    if method.hvp == "finite_difference":
        info["eps"] = radius  # the radius at the first iterate
    return g, info


def _inner_products(method, inner_loss, w, alpha, inner_batch, has_aux):
    """`(hvp, joint)` of `L_inner` at `w`: `u -> H u`, and `u -> (H u, M^T u, grad_w L_inner)`.

    From one linearization of the inner gradient (`method.linearize`), or each product its own
    jvp, whose primal output gives `grad_w` at no extra pass.
    """
    if method.linearize:
        lin = linearize_inner(inner_loss, w, alpha, inner_batch, has_aux=has_aux)
        return lin.hvp, lambda u: (*lin.products(u), lin.grad_w)
    grads = gradient_fn(inner_loss, (0, 1), has_aux)

    def joint(u):
        (grad_w, _), (hvp_u, mixed_u) = jax.jvp(lambda w_: grads(w_, alpha, inner_batch), (w,),
                                                (u,))
        return hvp_u, mixed_u, grad_w

    return (lambda u: hvp(inner_loss, w, u, alpha, inner_batch, has_aux=has_aux)), joint


def _implicit(mixed_inverse):
    """An implicit method from `mixed_inverse(method, hvp, joint, v, alpha) -> (M^T x,
    grad_w L_inner, info)` with `x ~ H^-1 v` (`_inner_products`' `hvp` and `joint`)."""

    def hypergradient_fn(method, inner_loss, outer_loss, w, alpha, inner_batch, outer_batch,
                         has_aux):
        v, g, info = _outer(outer_loss, w, alpha, outer_batch, has_aux)
        inner_hvp, joint = _inner_products(method, inner_loss, w, alpha, inner_batch, has_aux)
        mixed_x, inner_grad_w, solve_info = mixed_inverse(method, inner_hvp, joint, v, alpha)
        info = {**solve_info, **info, "inner_grad_norm": tree_norm(inner_grad_w)}
        return tree_sub(g, mixed_x), info

    return hypergradient_fn


def _solved(approximate_inverse):
    """`mixed_inverse` from `approximate_inverse(method, hvp, v) -> (x ~ H^-1 v, info)`."""

    def mixed_inverse(method, inner_hvp, joint, v, alpha):
        del alpha
        x, info = approximate_inverse(method, inner_hvp, v)
        _, mixed_x, inner_grad_w = joint(x)
        return mixed_x, inner_grad_w, info

    return mixed_inverse


_neumann_unrolled = _solved(
    lambda method, hvp_, v: neumann_series(hvp_, v, method.lr, method.terms))


def _neumann(method, inner_hvp, joint, v, alpha):
    """Neumann's `M^T x`: the series' products unrolled (`neumann_series`), or with
    `method.loop` one `lax.scan` over its terms `p_{k+1} = p_k - lr H p_k` (`p_0 = v`) with
    `M^T x = lr sum_k M^T p_k`, so the program holds one product."""
    if not method.loop:
        return _neumann_unrolled(method, inner_hvp, joint, v, alpha)
    lr = method.lr

    def term(carry, _):
        p, mixed_sum, _ = carry
        hvp_p, mixed_p, inner_grad_w = joint(p)
        return (tree_axpy(-lr, hvp_p, p), tree_axpy(1.0, mixed_p, mixed_sum), inner_grad_w), \
            tree_norm(p)

    init = (v, jax.tree.map(jnp.zeros_like, alpha), jax.tree.map(jnp.zeros_like, v))
    (_, mixed_sum, inner_grad_w), norms = lax.scan(term, init, None, length=method.terms + 1)
    info = {"hvps": jnp.int32(method.terms), "last_term_norm": lr * norms[-1]}
    return tree_scale(lr, mixed_sum), inner_grad_w, info


def _amended(method, inner_hvp, joint, v, alpha):
    del alpha
    _, mixed_x, inner_grad_w = joint(tree_scale(method.eta, inner_hvp(v)))
    return mixed_x, inner_grad_w, {"hvps": jnp.int32(1)}


_IMPLEMENTATIONS = {
    m.FirstOrder: _first_order,
    m.Unrolled: _unrolled,
    m.Neumann: _implicit(_neumann),
    m.ConjugateGradient: _implicit(_solved(
        lambda method, hvp_, v: cg(hvp_, v, method.maxiter, method.tol, method.damping))),
    m.Exact: _implicit(_solved(lambda method, hvp_, v: dense_solve(hvp_, v))),
    m.Amended: _implicit(_amended),
}


def hypergradient(method, inner_loss, outer_loss, w, alpha, inner_batch, outer_batch,
                  has_aux=False):
    """Hypergradient of `L_outer(w*(alpha), alpha)` in `alpha`, approximated by `method`.

    Args:
      method: `FirstOrder()`, `Unrolled(...)`, `Neumann(...)`, `ConjugateGradient(...)`,
        `Exact()` or `Amended(...)`; hashable, so it can be a static `jax.jit` argument.
      inner_loss, outer_loss: pure `loss(w, alpha, batch) -> scalar`, or `-> (scalar, aux)`
        with `has_aux=True` (for both). The inner aux is discarded.
      w: the inner parameters (any pytree), taken as the current estimate of `w*(alpha)`.
      alpha: the outer parameters (any pytree).
      inner_batch, outer_batch: passed as the third argument of the inner and the outer loss.
      has_aux: whether both losses return `(scalar, aux)`.

    Returns:
      `(grad_alpha, info)`: `grad_alpha` shaped like `alpha`; `info` a dict of scalars with
      `hvps` (Hessian-vector products used), `outer_loss` (where the outer loss was evaluated:
      `w`, or the last SGD iterate for `Unrolled`), `aux` (the outer aux there, with
      `has_aux=True`), and per method: `inner_grad_norm` (`||grad_w L_inner(w)||`, implicit methods:
      the implicit function theorem assumes it is 0); `Neumann`: `last_term_norm`;
      `ConjugateGradient`: `iterations`, `residual_norm`, `relative_residual`, `converged`,
      `breakdown`; `Exact`: `residual_norm`; `Unrolled(hvp="finite_difference")`: `eps`, the
      radius `eps / ||v||` of the central difference at the first iterate.
    """
    implementation = _IMPLEMENTATIONS.get(type(method))
    if implementation is None:
        names = ", ".join(cls.__name__ for cls in _IMPLEMENTATIONS)
        raise TypeError(f"method must be one of hypergrad.{{{names}}}, got {method!r}.")
    return implementation(method, inner_loss, outer_loss, w, alpha, inner_batch, outer_batch,
                          has_aux)
