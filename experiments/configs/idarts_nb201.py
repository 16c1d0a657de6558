"""iDARTS (Zhang thesis, ch. 6, Algorithm 6) on NAS-Bench-201, CIFAR-10: T=4 weight steps per
architecture step and the Neumann hypergradient with K=2 (Table 6.3's best, T=4, K=2), gamma = the
current weight learning rate; otherwise the NAS-Bench-201 DARTS settings the thesis follows
(darts_nb201).
"""

import ml_collections

from experiments.configs import darts_nb201


def get_config():
    c = darts_nb201.get_config()
    c.strategy = ml_collections.ConfigDict(dict(name="idarts", inner_steps=4, neumann_terms=2,
                                                gamma_scale=1.0, hessian_weight_decay=0.0,
                                                linearize=True, neumann_loop=False))
    c.eigenvalue_every = 100  # about once an epoch (4 train batches per step)
    return c
