"""Trains the graph VAE of E²NAS on the cells of a search space and checks its injectivity: every
NAS-Bench-201 cell (``vae_nb201.py``, the default) or drawn DARTS cells (``vae_darts.py``).

    python -m experiments.train_vae --workdir=runs/vae \
        [--config=experiments/configs/vae_nb201.py[:small]] [--config.field=value ...]

Re-running the same command on the same workdir resumes from its last checkpoint
(--allow_config_change=FIELD,... lets it resume with those fields changed). A search loads the
trained VAE with ``jaxnas.vae.train.load_vae(workdir)``.
"""

import os

from absl import app, flags

from experiments import cli
from jaxnas.vae.train import train_vae

_CONFIG = cli.define_config(os.path.join(os.path.dirname(__file__), "configs", "vae_nb201.py"),
                            "VAE config file.")
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for checkpoints, metrics and the "
                               "report.")
flags.mark_flags_as_required(["workdir"])


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    train_vae(_CONFIG.value, _WORKDIR.value, cli.ALLOW_CHANGES.value)


if __name__ == "__main__":
    cli.run(main, multi_process=True, compilation_cache=True)
