"""Runs an architecture search.

    python -m experiments.search --config=experiments/configs/quickstart.py --workdir=runs/q1 \
        [--config.field=value ...] [--allow_config_change=optim_w.lr,...] [--verbose]

Re-running the same command on the same workdir resumes from its last checkpoint. A config with
an ``oracle`` field (``oracle_nb201.py:ALGO``) runs black-box searches on the NAS-Bench-201 table
instead (``jaxnas.engine.oracle_loop``).
"""

from absl import app, flags
from ml_collections import config_flags

from experiments import cli
from jaxnas.engine import search
from jaxnas.engine.oracle_loop import oracle_search

_CONFIG = config_flags.DEFINE_config_file("config", None, "Search config file.",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for checkpoints, metrics and results.")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    run = oracle_search if "oracle" in _CONFIG.value else search
    run(_CONFIG.value, _WORKDIR.value, cli.ALLOW_CHANGES.value)


if __name__ == "__main__":
    cli.run(main, multi_process=True, compilation_cache=True)
