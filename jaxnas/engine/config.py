"""Checks of experiment config values, each naming the field."""


def require_positive(config, *names):
    """Raises ValueError naming the first field of ``names`` (dotted) that is not > 0."""
    for name in names:
        value = config
        for part in name.split("."):
            value = value[part]
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not value > 0:
            raise ValueError(f"config.{name} must be a positive number, got {value!r}.")


def require_nonnegative(config, *names):
    for name in names:
        value = config
        for part in name.split("."):
            value = value[part]
        if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
            raise ValueError(f"config.{name} must be >= 0, got {value!r}.")
