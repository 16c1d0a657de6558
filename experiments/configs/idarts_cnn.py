"""iDARTS in the DARTS CNN space on CIFAR-10: T=5 weight steps per architecture step, Neumann
K=2 (the thesis's NAS-Bench-1Shot1 setting: T=5 "an excellent compute/performance trade-off",
K=2 "large enough"), gamma = the current weight learning rate; DARTS's other settings.
"""

from experiments.configs import darts_cnn


def get_config():
    c = darts_cnn.get_config()
    c.strategy.name = "idarts"
    c.strategy.inner_steps = 5
    c.strategy.neumann_terms = 2
    c.strategy.gamma_scale = 1.0
    c.strategy.hessian_weight_decay = 0.0
    # Each second-order product its own jvp: the scanned DARTS supernet recomputes its
    # activations anyway, and one shared linearization ran out of 23 GB (BENCHMARKS.md).
    c.strategy.linearize = False
    c.strategy.neumann_loop = False
    c.eigenvalue_every = 78  # about once an epoch (5 train batches per step)
    return c
