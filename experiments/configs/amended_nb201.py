"""Amended-DARTS (eta = 0.1) on NAS-Bench-201, CIFAR-10, with the NB201 DARTS settings
(darts_nb201) and DARTS's order, the architecture first (the paper reports no NB201 run; this
config is for comparison with the other NB201 searches)."""

import ml_collections

from experiments.configs import darts_nb201


def get_config():
    c = darts_nb201.get_config()
    c.strategy = ml_collections.ConfigDict(dict(name="amended", eta=0.1,
                                                hessian_weight_decay=0.0, alpha_first=True,
                                                linearize=True))
    return c
