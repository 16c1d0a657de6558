"""iDARTS (Zhang thesis, ch. 6, Algorithm 6) on NAS-Bench-201, CIFAR-10: T=4 weight steps per
architecture step and the Neumann hypergradient with K=2 (Table 6.3's best, T=4, K=2), gamma = the
current weight learning rate; otherwise the NAS-Bench-201 DARTS settings the thesis follows.
"""

from experiments.configs import darts_nb201


def get_config():
    c = darts_nb201.get_config()
    c.strategy.name = "idarts"
    c.strategy.inner_steps = 4
    c.strategy.neumann_terms = 2
    c.strategy.gamma_scale = 1.0
    c.strategy.hessian_weight_decay = 0.0
    c.eigenvalue_every = 100  # about once an epoch (4 train batches per step)
    return c
