"""Bilevel hypergradients: `d/dalpha L_outer(w*(alpha), alpha)`, `w*(alpha) = argmin_w L_inner`.

Usage: `grad_alpha, info = hypergradient(method, inner_loss, outer_loss, w, alpha, inner_batch,
outer_batch)` with `method` one of `FirstOrder`, `Unrolled`, `Neumann`, `ConjugateGradient`,
`Exact`, `Amended`. Building blocks: matrix-free Hessian-vector and mixed products, a one-time
linearization of the inner gradient, CG / Neumann / dense solvers and power iteration.
Pure JAX on arbitrary pytrees; works under `jit` and `vmap`. Knows nothing of NAS.
"""

from jaxnas.hypergrad.core import hypergradient
from jaxnas.hypergrad.eigen import power_iteration, top_hessian_eigenvalue
from jaxnas.hypergrad.methods import (Amended, ConjugateGradient, Exact, FirstOrder, Neumann,
                                      Unrolled, products_in_loop)
from jaxnas.hypergrad.products import (InnerLinearization, central_difference, hvp,
                                       linearize_inner, mixed_product)
from jaxnas.hypergrad.solvers import cg, dense_solve, neumann_series

__all__ = [
    "hypergradient",
    "FirstOrder",
    "Unrolled",
    "Neumann",
    "ConjugateGradient",
    "Exact",
    "Amended",
    "products_in_loop",
    "hvp",
    "mixed_product",
    "linearize_inner",
    "InnerLinearization",
    "central_difference",
    "cg",
    "neumann_series",
    "dense_solve",
    "power_iteration",
    "top_hessian_eigenvalue",
]
