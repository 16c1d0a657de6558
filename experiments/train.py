"""Trains the network of a genotype from scratch and reports its test accuracy.

    python -m experiments.train --genotype=DARTS_V2 \
        --config=experiments/configs/train_darts_cifar.py --workdir=runs/darts_v2 \
        [--config.field=value ...]

--genotype: a genotype.json (as a search writes), a published name (DARTS_V2, PDARTS, ...), an
NB201 arch string or a DARTS Genotype(...) string. Re-running the same command on the same
workdir resumes from its last checkpoint (--allow_config_change=FIELD,... lets it resume with
those fields changed).
"""

import os

from absl import app, flags
from ml_collections import config_flags

from experiments import cli
from jaxnas.engine import train

_CONFIG = config_flags.DEFINE_config_file(
    "config", os.path.join(os.path.dirname(__file__), "configs", "train_darts_cifar.py"),
    "Training config file.", lock_config=True)
_GENOTYPE = flags.DEFINE_string("genotype", None, "genotype.json path, published genotype name, "
                                "NB201 arch string or DARTS Genotype(...) string.")
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for checkpoints, metrics and results.")
flags.mark_flags_as_required(["genotype", "workdir"])


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    train(_CONFIG.value, _GENOTYPE.value, _WORKDIR.value, cli.ALLOW_CHANGES.value)


if __name__ == "__main__":
    cli.run(main, multi_process=True, compilation_cache=True)
