"""DARTS second order on NAS-Bench-201, CIFAR-10 (NAS-Bench-201's DARTS-V2 baseline): the
darts_nb201 settings with the unrolled hypergradient, xi = the current weight learning rate.
``--config.strategy.hvp=finite_difference`` uses the original code's central difference.
"""

from experiments.configs import darts_nb201


def get_config():
    c = darts_nb201.get_config()
    c.strategy.name = "darts2"
    c.strategy.hvp = "exact"
    c.strategy.eps = 0.01
    return c
