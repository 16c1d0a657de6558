"""Argument checks shared by ``jaxnas.rl``: a ValueError that names the argument, the value and
what to do. (``jaxnas.strategies.options`` has the same checks worded for ``config.strategy``
fields; ``jaxnas.rl`` sits below the strategies and does not import them.)"""

import numbers


def check_integer(name: str, value, minimum: int, hint: str) -> None:
    """A ValueError unless ``value`` is a Python integer >= ``minimum`` (bools are not)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum} ({hint}), got {value!r}.")


def check_real(name: str, value, low: float, high: float, interval: str, hint: str) -> None:
    """A ValueError unless ``value`` is a Python real number in ``interval``, one of ``"()"``,
    ``"(]"``, ``"[)"``, ``"[]"`` with ends ``low`` and ``high`` (which may be infinite)."""
    ok = not isinstance(value, bool) and isinstance(value, numbers.Real)
    if ok:
        ok = (low < value if interval[0] == "(" else low <= value) and \
             (value < high if interval[1] == ")" else value <= high)
    if not ok:
        raise ValueError(f"{name} must be a number in {interval[0]}{low}, {high}{interval[1]} "
                         f"({hint}), got {value!r}.")


def check_trailing_shape(name: str, shape: tuple, expected: tuple, hint: str) -> None:
    """A ValueError unless ``shape`` ends with ``expected`` (any leading batch dimensions)."""
    shape, expected = tuple(shape), tuple(expected)
    if len(shape) < len(expected) or shape[len(shape) - len(expected):] != expected:
        raise ValueError(f"{name} must have shape [..., {', '.join(map(str, expected))}] "
                         f"({hint}), got {list(shape)}.")
