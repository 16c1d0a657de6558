"""Strategies by name, with their options (``config.strategy``)."""

import inspect

from jaxnas import hypergrad as hg
from jaxnas.strategies.gradient import GradientSearch


def _darts():
    return GradientSearch(lambda lr: hg.FirstOrder(), "darts")


def _darts2(hvp: str = "exact", eps: float = 0.01):
    hg.Unrolled(1.0, 1, hvp, eps)  # validates the options now, with a clear message
    return GradientSearch(lambda lr: hg.Unrolled(lr, 1, hvp, eps), "darts2")


def _idarts(inner_steps: int = 4, neumann_terms: int = 2, gamma_scale: float = 1.0,
            hessian_weight_decay: float = 0.0):
    hg.Neumann(gamma_scale, neumann_terms)
    return GradientSearch(lambda lr: hg.Neumann(gamma_scale * lr, neumann_terms), "idarts",
                          inner_steps=inner_steps, alpha_first=False,
                          hessian_weight_decay=hessian_weight_decay)


def _amended(eta: float = 0.1, hessian_weight_decay: float = 0.0):
    hg.Amended(eta)
    return GradientSearch(lambda lr: hg.Amended(eta), "amended",
                          hessian_weight_decay=hessian_weight_decay)


STRATEGIES = {"darts": _darts, "darts2": _darts2, "idarts": _idarts, "amended": _amended}


def get_strategy(name: str, **options):
    """The strategy ``name`` with its options; unknown names or options raise ValueError."""
    if name not in STRATEGIES:
        raise ValueError(f"Unknown strategy {name!r}; known strategies: {', '.join(STRATEGIES)}.")
    known = list(inspect.signature(STRATEGIES[name]).parameters)
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise ValueError(f"Unknown option(s) {unknown} for strategy {name!r}; its options are "
                         f"{known or 'none'}.")
    return STRATEGIES[name](**options)
