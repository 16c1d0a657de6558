"""Checks of experiment configs, and the record of a workdir's config for resuming.

A workdir belongs to one run: its config is saved as ``config.json`` on the first run, and a
later run with a different config is refused (``RUN_CONTROL`` fields, which change what is logged
or how far the run goes but not its trajectory, may differ).
"""

import json
import os

from jaxnas.files import write_json

RUN_CONTROL = ("max_steps", "log_every", "checkpoint_every", "keep_checkpoints",
               "eigenvalue_every", "eigenvalue_iters", "nb201_table", "data_dir",
               "eval_every")


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


def _comparable(config_dict):
    return {k: v for k, v in config_dict.items() if k not in RUN_CONTROL}


def claim_workdir(workdir: str, config) -> None:
    """Saves ``config`` in ``workdir`` on the first run; on later runs refuses a different one."""
    os.makedirs(workdir, exist_ok=True)
    path = os.path.join(workdir, "config.json")
    current = json.loads(config.to_json())
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            saved = json.load(f)
        if _comparable(saved) != _comparable(current):
            diff = sorted(k for k in set(saved) | set(current)
                          if k not in RUN_CONTROL and saved.get(k) != current.get(k))
            details = "; ".join(f"{k}: {saved.get(k)!r} -> {current.get(k)!r}" for k in diff)
            raise ValueError(
                f"The workdir {workdir!r} holds a run with a different config ({details}). "
                "Use a new --workdir, or rerun with the saved config to resume.")
        return
    write_json(path, current, sort_keys=True)
