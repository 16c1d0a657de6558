"""GDAS in the DARTS CNN space on CIFAR-10: the DARTS search network (8 cells, C=16, batch 64,
SGD 0.025 cosine to 0.001, momentum 0.9, wd 3e-4, clip 5; Adam 3e-4 (0.5, 0.999) 1e-3 on the
logits) with GDAS's 240 epochs and Gumbel temperature 10 to 0.1. (GDAS's own DARTS-space search
also fixes the reduction cell, which this config does not.) Zhang thesis Table 3.1: GDAS 2.93 %
CIFAR-10 test error after retraining.

    python -m experiments.search --config=experiments/configs/gdas_cnn.py --workdir=runs/gdas_cnn
"""

from experiments.configs import darts_cnn, gdas_nb201

def get_config():
    c = darts_cnn.get_config()  # DARTS's search settings
    c.epochs = 240
    c.strategy = gdas_nb201.get_config().strategy
    c.eigenvalue_every = 0
    return c
