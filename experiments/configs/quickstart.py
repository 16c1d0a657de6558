"""Quickstart: first-order DARTS in NAS-Bench-201's space with a tiny supernet (C=8, one cell per
stage) on the embedded 8x8 digits (no download). About a minute on a 2-core CPU; the weights of
skip connections grow, as DARTS's do.

    python -m experiments.search --config=experiments/configs/quickstart.py --workdir=runs/quickstart
"""

from experiments.configs.common import search_defaults


def get_config():
    c = search_defaults()
    c.dataset = "digits"
    c.augment = False  # 8x8 digits are not flipped or cropped
    c.batch_size = 32
    c.epochs = 30
    c.space.name = "nb201"
    c.space.C = 8
    c.space.N = 1
    c.strategy.name = "darts"
    c.optim_alpha.lr = 1e-2  # a short search: a larger architecture step than DARTS's 3e-4
    c.log_every = 20
    c.checkpoint_every = 200
    return c
