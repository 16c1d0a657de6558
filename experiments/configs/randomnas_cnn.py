"""RandomNAS (random search with weight sharing) in the DARTS CNN space on CIFAR-10, with the
DARTS search settings the Zhang thesis uses for its single-path searches (8 cells, C=16, 50
epochs, batch 64, SGD 0.025 cosine to 0.001, momentum 0.9, wd 3e-4, clip 5); one uniformly
sampled path (two inputs per node, one operation other than none per input) trained per step,
then regularized evolution on the val accuracy of paths with the supernet's weights. Zhang thesis
Table 3.1: RandomNAS 2.85±0.08 % CIFAR-10 test error after retraining.

    python -m experiments.search --config=experiments/configs/randomnas_cnn.py --workdir=runs/randomnas_cnn
"""

from experiments.configs import darts_cnn, randomnas_nb201

def get_config():
    c = darts_cnn.get_config()  # DARTS's search settings
    c.strategy = randomnas_nb201.get_config().strategy
    c.eigenvalue_every = 0
    return c
