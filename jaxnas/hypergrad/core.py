"""`hypergradient`: `d/dalpha L_outer(w*(alpha), alpha)`, `w*(alpha) = argmin_w L_inner(w, alpha)`.

The implicit methods (Neumann, ConjugateGradient, Exact, Amended) share one path: the outer
gradients `(v, g) = (grad_w, grad_alpha) L_outer` at `w`, the inner products at `w` (one
linearization of the inner gradient, or a jvp each: the method's `linearize`), an approximation
`x` of `H^-1 v` from the method, and `g - M^T x`. Unrolled differentiates through SGD steps by a
reverse recursion over the stored iterates.
"""

import jax
import jax.numpy as jnp

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
    """`(hvp, mixed)` of `L_inner` at `w`: `u -> H u`, and `x -> (M^T x, grad_w L_inner)`.

    From one linearization of the inner gradient (`method.linearize`), or each product its own
    jvp, whose primal output gives the mixed product `grad_w` at no extra pass.
    """
    if method.linearize:
        lin = linearize_inner(inner_loss, w, alpha, inner_batch, has_aux=has_aux)
        return lin.hvp, lambda x: (lin.mixed(x), lin.grad_w)
    grads = gradient_fn(inner_loss, (0, 1), has_aux)

    def mixed(x):
        (grad_w, _), (_, mixed_x) = jax.jvp(lambda w_: grads(w_, alpha, inner_batch), (w,), (x,))
        return mixed_x, grad_w

    return (lambda u: hvp(inner_loss, w, u, alpha, inner_batch, has_aux=has_aux)), mixed


def _implicit(approximate_inverse):
    """An implicit method from `approximate_inverse(method, hvp, v) -> (x ~ H^-1 v, info)`."""

    def hypergradient_fn(method, inner_loss, outer_loss, w, alpha, inner_batch, outer_batch,
                         has_aux):
        v, g, info = _outer(outer_loss, w, alpha, outer_batch, has_aux)
        inner_hvp, inner_mixed = _inner_products(method, inner_loss, w, alpha, inner_batch,
                                                 has_aux)
        x, solve_info = approximate_inverse(method, inner_hvp, v)
        mixed_x, inner_grad_w = inner_mixed(x)
        info = {**solve_info, **info, "inner_grad_norm": tree_norm(inner_grad_w)}
        return tree_sub(g, mixed_x), info

    return hypergradient_fn


def _amended_inverse(method, hvp, v):
    return tree_scale(method.eta, hvp(v)), {"hvps": jnp.int32(1)}


_IMPLEMENTATIONS = {
    m.FirstOrder: _first_order,
    m.Unrolled: _unrolled,
    m.Neumann: _implicit(lambda method, hvp, v: neumann_series(hvp, v, method.lr, method.terms)),
    m.ConjugateGradient: _implicit(
        lambda method, hvp, v: cg(hvp, v, method.maxiter, method.tol, method.damping)),
    m.Exact: _implicit(lambda method, hvp, v: dense_solve(hvp, v)),
    m.Amended: _implicit(_amended_inverse),
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
