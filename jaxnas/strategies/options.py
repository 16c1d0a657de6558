"""Config sections to objects: the hypergradient method (``strategy.hypergradient``) and the
architecture update rule (``optim_alpha``), with clear errors naming the field.

Both are mappings with a ``name`` and that name's fields:

- hypergradient: ``first_order``; ``unrolled`` (``hvp``: "exact" | "finite_difference",
  ``eps``; DARTS second order); ``neumann`` (``terms``, ``gamma_scale``, ``linearize``,
  ``loop``; iDARTS); ``amended`` (``eta``, ``linearize``). A method takes the current weight
  learning rate as its step where it needs one. ``linearize`` is the implicit methods' choice
  between one linearization of the inner gradient shared by the products (True) and a jvp per
  product (False: less memory; ``hypergrad.methods``); ``loop`` computes Neumann's products in
  one ``lax.scan`` (a program with one product, whatever ``terms``).
- optim_alpha: ``adam`` (``lr``, ``b1``, ``b2``, ``weight_decay``: L2 added to the gradient,
  PyTorch's Adam); ``vadam`` (``form``, ``lr``, ``b1``, ``b2``, ``momentum``, ``num_data``,
  ``prior_precision``, ``init_precision``; ``jaxnas.transforms.vadam``).
"""

import inspect
import numbers
from typing import Callable, Mapping

import optax

from jaxnas import hypergrad as hg
from jaxnas import transforms


def _first_order():
    return lambda lr: hg.FirstOrder()


def _unrolled(hvp: str = "exact", eps: float = 0.01):
    hg.Unrolled(1.0, 1, hvp, eps)  # validates the options now, with a clear message
    return lambda lr: hg.Unrolled(lr, 1, hvp, eps)


def _neumann(terms: int = 2, gamma_scale: float = 1.0, linearize: bool = True,
             loop: bool = False):
    hg.Neumann(gamma_scale, terms, linearize, loop)
    return lambda lr: hg.Neumann(gamma_scale * lr, terms, linearize, loop)


def _amended(eta: float = 0.1, linearize: bool = True):
    method = hg.Amended(eta, linearize)
    return lambda lr: method


HYPERGRADIENTS = {"first_order": _first_order, "unrolled": _unrolled, "neumann": _neumann,
                  "amended": _amended}


def _adam(lr: float = 3e-4, b1: float = 0.5, b2: float = 0.999, weight_decay: float = 1e-3):
    _require("lr", lr, lambda v: v > 0, "a number > 0")
    for name, value in (("b1", b1), ("b2", b2)):
        _require(name, value, lambda v: 0 <= v < 1, "in [0, 1)")
    _require("weight_decay", weight_decay, lambda v: v >= 0, "a number >= 0")
    parts = [optax.add_decayed_weights(weight_decay)] if weight_decay else []
    parts.append(optax.adam(lr, b1=b1, b2=b2))
    return optax.chain(*parts)


def _vadam(form: str = "khan2018", lr: float = 3e-4, b1: float = 0.5, b2: float = 0.999,
           momentum: float = 0.0, num_data: int = 25000, prior_precision: float = 1.0,
           init_precision: float = 1.0):
    return transforms.vadam(lr, num_data, b1, b2, prior_precision, init_precision, momentum,
                            form)


RULES = {"adam": _adam, "vadam": _vadam}


def hypergradient_method(section: Mapping | None, field: str = "strategy.hypergradient"
                         ) -> Callable:
    """``lr -> method`` from a ``{"name": ..., **fields}`` mapping (None: first order)."""
    return _build(HYPERGRADIENTS, dict(section or {"name": "first_order"}), field)


def update_rule(section: Mapping | None, accepted: tuple[str, ...],
                field: str = "optim_alpha") -> optax.GradientTransformation:
    """The update rule of an ``optim_alpha`` mapping (None: the first accepted rule's
    defaults), restricted to the ``accepted`` names of the strategy."""
    section = dict(section or {"name": accepted[0]})
    name = section.get("name", accepted[0])
    if name not in accepted:
        raise ValueError(f"config.{field}.name {name!r} is not an update rule of this strategy; "
                         f"it takes {', '.join(map(repr, accepted))}.")
    return _build(RULES, {**section, "name": name}, field)


def _build(table, section, field):
    name = section.pop("name", None)
    if name not in table:
        raise ValueError(f"config.{field}.name must be one of {', '.join(map(repr, table))}, "
                         f"got {name!r}.")
    known = list(inspect.signature(table[name]).parameters)
    unknown = sorted(set(section) - set(known))
    if unknown:
        raise ValueError(f"Unknown field(s) {unknown} in config.{field} for {name!r}; its "
                         f"fields are {known or 'none'}.")
    try:
        return table[name](**section)
    except ValueError as e:
        raise ValueError(f"config.{field} ({name}): {e}") from None


def _require(name, value, ok, expected):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not ok(value):
        raise ValueError(f"{name} must be {expected}, got {value!r}.")


def check_integer(field: str, value, minimum: int) -> None:
    """A ValueError naming ``config.strategy.<field>`` unless ``value`` is an integer >=
    ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"config.strategy.{field} must be an integer >= {minimum}, got "
                         f"{value!r}.")


def check_choice(field: str, value, choices: tuple[str, ...]) -> None:
    """A ValueError naming ``config.strategy.<field>`` unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise ValueError(f"config.strategy.{field} must be one of "
                         f"{', '.join(map(repr, choices))}, got {value!r}.")
