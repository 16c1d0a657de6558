"""EN²AS in the DARTS CNN space on CIFAR-10 (Zhang thesis ch. 2): RandomNAS's DARTS-space
settings (``randomnas_cnn.py``) with EN²AS's novelty-driven paths (S=1000, n=10, sigma=1,
gamma=0.01, k=10; members are the 16-real node encodings of each cell, both cells perturbed
together). Table 2.1: EN²AS 2.61±0.06 % CIFAR-10 test error after retraining.

    python -m experiments.search --config=experiments/configs/en2as_cnn.py --workdir=runs/en2as_cnn
"""

from experiments.configs import en2as_nb201, randomnas_cnn


def get_config():
    c = randomnas_cnn.get_config()
    c.strategy = en2as_nb201.get_config().strategy
    return c
