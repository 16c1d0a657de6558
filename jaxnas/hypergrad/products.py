"""Second-order products of a scalar loss `f(w, alpha, *args)`, matrix-free.

`H u = d2 f / dw2 . u` (like `w`) and `M^T u = d/dalpha <grad_w f, u>` (like `alpha`), for
arbitrary pytrees `w`, `alpha`, `u`. Exact products are forward-over-reverse (a jvp of a
gradient); `central_difference` is DARTS's finite-difference alternative.
"""

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from jaxnas.hypergrad._tree import tree_axpy, tree_norm


def gradient_fn(f, argnums, has_aux=False):
    """`jax.grad(f, argnums)` that returns only the gradient; `f`'s aux is not differentiated."""
    grad = jax.grad(f, argnums=argnums, has_aux=has_aux)
    return (lambda *args: grad(*args)[0]) if has_aux else grad


def hvp(f, w, v, *args, has_aux=False):
    """`H v` with `H = d2 f(w, *args) / dw2`; `v` and the result are shaped like `w`."""
    grad_w = gradient_fn(f, 0, has_aux)
    return jax.jvp(lambda w_: grad_w(w_, *args), (w,), (v,))[1]


def mixed_product(f, w, alpha, v, *args, has_aux=False):
    """`M^T v = d/dalpha <grad_w f(w, alpha, *args), v>`; `v` like `w`, result like `alpha`.

    Computed as one jvp of `w -> grad_alpha f` in direction `v` (the mixed partials commute).
    """
    grad_alpha = gradient_fn(f, 1, has_aux)
    return jax.jvp(lambda w_: grad_alpha(w_, alpha, *args), (w,), (v,))[1]


class InnerLinearization(NamedTuple):
    """The map `w -> (grad_w f, grad_alpha f)` linearized once at `w`.

    `hvp(u) = H u` and `mixed(u) = M^T u` apply the stored linear map (its tangent part only), so
    repeated HVPs and the final mixed product share one primal forward and backward pass;
    `products(u) = (H u, M^T u)` both from one application.
    """

    grad_w: Any
    grad_alpha: Any
    hvp: Callable[[Any], Any]
    mixed: Callable[[Any], Any]
    products: Callable[[Any], tuple]


def linearize_inner(f, w, alpha, *args, has_aux=False):
    """Linearizes `w -> (grad_w f, grad_alpha f)(w, alpha, *args)` at `w`: `InnerLinearization`."""
    grads = gradient_fn(f, (0, 1), has_aux)
    (grad_w, grad_alpha), jvp = jax.linearize(lambda w_: grads(w_, alpha, *args), w)
    return InnerLinearization(grad_w, grad_alpha, lambda u: jvp(u)[0], lambda u: jvp(u)[1], jvp)


def central_difference(fn, w, v, eps):
    """Directional derivative `(fn(w + r v) - fn(w - r v)) / 2r` with `r = eps / ||v||` (DARTS).

    `fn` maps a pytree like `w` to any pytree; returns `(derivative, r)`. `r = eps` when `v = 0`.
    """
    norm = tree_norm(v)
    radius = eps / jnp.where(norm > 0, norm, 1.0).astype(norm.dtype)
    plus, minus = fn(tree_axpy(radius, v, w)), fn(tree_axpy(-radius, v, w))
    derivative = jax.tree.map(lambda p, m: ((p - m) / (2 * radius)).astype(p.dtype), plus, minus)
    return derivative, radius
