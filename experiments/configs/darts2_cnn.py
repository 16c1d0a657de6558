"""DARTS second order in the DARTS CNN space on CIFAR-10 (the paper's main result)."""

from experiments.configs import darts_cnn


def get_config():
    c = darts_cnn.get_config()
    c.strategy.name = "darts2"
    c.strategy.hvp = "exact"
    c.strategy.eps = 0.01
    return c
