"""Hypergradient methods: frozen, hashable configurations, usable as static `jax.jit` arguments.

Notation: `H = d2 L_inner / dw2`, `M^T u = d/dalpha <grad_w L_inner(w, alpha), u>`,
`v = grad_w L_outer`. Every implicit method returns `grad_alpha L_outer - M^T x` with `x`
an approximation of `H^-1 v`; the methods differ in how `x` is formed.

Hyperparameters are numbers checked when the method is built. A method passed as a static jit
argument must hold Python numbers (a new value means a new trace); inside a jitted function a
method may instead be built with a traced scalar, e.g. a scheduled learning rate
`Neumann(lr=schedule(step), terms=2)`, which is then taken as given.

Every implicit method has `linearize` (default True): the inner gradient
`w -> (grad_w L_inner, grad_alpha L_inner)` is linearized once at `w` and its linear map applied
for each product, so the products share one primal forward and backward pass, whose intermediates
are kept while any product is computed. `linearize=False` computes each product as its own
`jax.jvp` instead: the primal pass is recomputed per product and its intermediates live only
inside it. Same result; the second needs less memory (a third on the scanned DARTS supernet)
and compiles longer (`BENCHMARKS.md`, "A jvp per second-order product").

`Neumann(loop=True)` runs its products as one `lax.scan`, so the traced program holds one product
whatever `terms`; `products_in_loop(method)` says whether a method's products run in a loop body
(that, or CG's `lax.while_loop`), where XLA:CPU runs convolutions' derivatives up to 30x slower
unless they are traced loop-friendly (`jaxnas.spaces.ops.canonical_convs`, which the bilevel
search uses for such methods).
"""

import dataclasses
import math
import numbers

import jax

_HVP_MODES = ("exact", "finite_difference")


def _check_real(method, name, value, *, allow_zero, hint):
    """Returns `value` as a float if it is a finite real number > 0 (>= 0 with `allow_zero`);
    a traced scalar is returned unchecked."""
    if isinstance(value, jax.core.Tracer) and value.ndim == 0:
        return value
    if isinstance(value, jax.Array) and value.ndim == 0:
        value = value.item()
    ok = (
        isinstance(value, numbers.Real)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and (value >= 0 if allow_zero else value > 0)
    )
    if not ok:
        bound = "a finite number >= 0" if allow_zero else "a finite number > 0"
        raise ValueError(f"{method}: {name} must be {bound}, got {value!r}; {hint}")
    return float(value)


def _check_int(method, name, value, *, minimum, hint):
    """Returns `value` as an int if it is an integer >= `minimum`."""
    ok = isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= minimum
    if not ok:
        raise ValueError(f"{method}: {name} must be an integer >= {minimum}, got {value!r}; {hint}")
    return int(value)


def _check_bool(method, name, value, meaning):
    """A ValueError unless `value` is a bool (it shapes the traced program: never a tracer)."""
    if not isinstance(value, bool):
        raise ValueError(f"{method}: {name} must be True or False, got {value!r}; {meaning}")


def _check_linearize(method, value):
    _check_bool(method, "linearize", value, "True shares one linearization of the inner "
                "gradient among the products, False computes each product as its own jvp (less "
                "memory).")


def _set(obj, name, value):
    object.__setattr__(obj, name, value)


@dataclasses.dataclass(frozen=True)
class FirstOrder:
    """`d L_outer / d alpha` at `w`, the implicit term dropped (DARTS first order)."""


@dataclasses.dataclass(frozen=True)
class Unrolled:
    """Gradient through `steps` SGD steps `w <- w - lr * grad_w L_inner(w, alpha)`.

    `L_outer` is evaluated at the last iterate `w_T`; `steps=1` is DARTS second order. The
    products along the reverse pass are exact (`hvp="exact"`) or DARTS's central differences
    with radius `eps / ||v||` (`hvp="finite_difference"`). Memory: the `steps` iterates of `w`.
    """

    lr: float
    steps: int = 1
    hvp: str = "exact"
    eps: float = 0.01

    def __post_init__(self):
        _set(self, "lr", _check_real("Unrolled", "lr", self.lr, allow_zero=False,
                                     hint="pass the inner SGD learning rate, e.g. lr=0.01."))
        _set(self, "steps", _check_int("Unrolled", "steps", self.steps, minimum=1,
                                       hint="use steps=1 for DARTS second order."))
        if self.hvp not in _HVP_MODES:
            raise ValueError(f"Unrolled: hvp must be one of {_HVP_MODES}, got {self.hvp!r}; use "
                             "'exact' (autodiff) or 'finite_difference' (DARTS's central "
                             "difference).")
        _set(self, "eps", _check_real("Unrolled", "eps", self.eps, allow_zero=False,
                                      hint="DARTS uses eps=0.01."))


@dataclasses.dataclass(frozen=True)
class Neumann:
    """Implicit hypergradient with `H^-1 ~ lr * sum_{k=0..terms} (I - lr H)^k` (iDARTS Eq. 6.8).

    `terms` is the highest power, so `terms=0` is the one-step formula (Eq. 6.3) at `w`. The series
    converges only if `0 < lr * lambda < 2` for every eigenvalue `lambda` of `H`. `loop=True`
    computes the `terms + 1` products `(H p_k, M^T p_k)` of the series' terms `p_k` in one
    `lax.scan` and `M^T x` as `lr * sum_k M^T p_k` (the same result, up to rounding), so the
    program holds one product instead of `terms + 1`: a shorter compile, at the cost of the
    unused `H p_terms`; False unrolls them.
    """

    lr: float
    terms: int
    linearize: bool = True
    loop: bool = False

    def __post_init__(self):
        _set(self, "lr", _check_real("Neumann", "lr", self.lr, allow_zero=False,
                                     hint="pass the inner learning rate, below 1 / lambda_max(H)."))
        _set(self, "terms", _check_int("Neumann", "terms", self.terms, minimum=0,
                                       hint="terms is the highest power of (I - lr H); "
                                            "0 is DARTS."))
        _check_linearize("Neumann", self.linearize)
        _check_bool("Neumann", "loop", self.loop, "True computes the products in one lax.scan "
                    "(a smaller program), False unrolls them.")


@dataclasses.dataclass(frozen=True)
class ConjugateGradient:
    """Implicit hypergradient with `(H + damping I) x = v` solved matrix-free by CG.

    Stops when `||r|| <= tol ||v||`, after `maxiter` HVPs, or on non-positive curvature;
    `info` says which (`converged`, `breakdown`, `iterations`, `residual_norm`).
    """

    maxiter: int
    tol: float
    damping: float = 0.0
    linearize: bool = True

    def __post_init__(self):
        _set(self, "maxiter", _check_int("ConjugateGradient", "maxiter", self.maxiter, minimum=1,
                                         hint="bound the number of HVPs, e.g. maxiter=20."))
        _set(self, "tol", _check_real("ConjugateGradient", "tol", self.tol, allow_zero=True,
                                      hint="tol is the relative residual, e.g. tol=1e-5."))
        _set(self, "damping", _check_real("ConjugateGradient", "damping", self.damping,
                                          allow_zero=True,
                                          hint="damping adds damping * I to H; use 0 for none."))
        _check_linearize("ConjugateGradient", self.linearize)


@dataclasses.dataclass(frozen=True)
class Exact:
    """Implicit hypergradient with `H` materialized and solved densely. Small problems only."""

    linearize: bool = True

    def __post_init__(self):
        _check_linearize("Exact", self.linearize)


@dataclasses.dataclass(frozen=True)
class Amended:
    """Amended-DARTS: `grad_alpha L_outer - eta * M^T (H v)` at `w` (`H^-1` replaced by `eta H`)."""

    eta: float
    linearize: bool = True

    def __post_init__(self):
        _set(self, "eta", _check_real("Amended", "eta", self.eta, allow_zero=True,
                                      hint="the paper uses eta=0.1; eta=0 is first order."))
        _check_linearize("Amended", self.linearize)


def products_in_loop(method) -> bool:
    """Whether `method` applies its second-order products in a loop body: CG's while loop, or
    `Neumann(loop=True)`'s scan."""
    return isinstance(method, ConjugateGradient) or (isinstance(method, Neumann) and method.loop)
