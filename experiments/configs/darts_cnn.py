"""DARTS (first order) in the DARTS CNN space on CIFAR-10 (Liu et al. 2019): 8 cells, C=16,
50 epochs, batch 64, SGD 0.025 cosine to 0.001, momentum 0.9, wd 3e-4, clip 5; alpha Adam 3e-4,
betas (0.5, 0.999), wd 1e-3; the training set split in halves.

    python -m experiments.search --config=experiments/configs/darts_cnn.py --workdir=runs/darts_cnn
"""

from experiments.configs.common import search_defaults


def get_config():
    c = search_defaults()
    c.dataset = "tfds:cifar10"
    c.batch_size = 64
    c.epochs = 50
    c.space.name = "darts"
    c.space.C = 16
    c.space.layers = 8
    c.space.edges = "all"
    c.space.auxiliary = False
    c.strategy.name = "darts"
    c.log_every = 50
    c.checkpoint_every = 1000
    c.eigenvalue_every = 390
    return c
