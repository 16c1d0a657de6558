"""Amended-DARTS (eta = 0.1) on NAS-Bench-201, CIFAR-10, with the NB201 DARTS settings (the
paper reports no NB201 run; this config is for comparison with the other NB201 searches)."""

from experiments.configs import darts_nb201


def get_config():
    c = darts_nb201.get_config()
    c.strategy.name = "amended"
    c.strategy.eta = 0.1
    c.strategy.hessian_weight_decay = 0.0
    return c
