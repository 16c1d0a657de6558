"""DARTS second order on NAS-Bench-201, CIFAR-10 (NAS-Bench-201's DARTS-V2 baseline): the
darts_nb201 settings with the unrolled hypergradient, xi = the current weight learning rate, and,
as its code (AutoDL-Projects ``DARTS-V2.py``) does: the architecture updated before the weights,
the virtual step with the weight optimizer's momentum and weight decay
(``w - xi (momentum * buffer + grad + wd * w)``). ``--config.strategy.virtual_step=sgd`` is the
DARTS paper's plain step; ``--config.strategy.hvp=finite_difference`` the original code's central
difference.
"""

import ml_collections

from experiments.configs import darts_nb201


def get_config():
    c = darts_nb201.get_config()
    c.strategy = ml_collections.ConfigDict(dict(name="darts2", hvp="exact", eps=0.01,
                                                virtual_step="momentum", alpha_first=True))
    return c
