"""DARTS (first order) on NAS-Bench-201, CIFAR-10: the settings of the NAS-Bench-201 paper's
DARTS-V1 baseline (50 epochs, batch 64, SGD 0.025 cosine to 0.001, momentum 0.9, wd 3e-4, clip 5;
alpha Adam 3e-4, betas (0.5, 0.999), wd 1e-3; C=16, N=5; the training set split in halves).

    python -m experiments.search --config=experiments/configs/darts_nb201.py --workdir=runs/darts_nb201
"""

from experiments.configs.common import search_defaults


def get_config():
    c = search_defaults()
    c.dataset = "tfds:cifar10"
    c.batch_size = 64
    c.epochs = 50
    c.space.name = "nb201"
    c.space.C = 16
    c.space.N = 5
    c.strategy.name = "darts"
    c.log_every = 50
    c.checkpoint_every = 1000
    c.eigenvalue_every = 390  # about once an epoch
    return c
