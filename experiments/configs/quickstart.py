"""Quickstart: first-order DARTS on NAS-Bench-201's space with a tiny supernet on the embedded
8x8 digits (no download). A couple of minutes on a laptop CPU.

    python -m experiments.search --config=experiments/configs/quickstart.py --workdir=runs/quickstart
"""

from experiments.configs.common import search_defaults


def get_config():
    c = search_defaults()
    c.dataset = "digits"
    c.augment = False
    c.batch_size = 32
    c.epochs = 8
    c.space.name = "nb201"
    c.space.C = 4
    c.space.N = 1
    c.strategy.name = "darts"
    c.optim_alpha.lr = 3e-3  # a short search: a larger architecture step than DARTS's 3e-4
    c.log_every = 10
    c.checkpoint_every = 50
    return c
