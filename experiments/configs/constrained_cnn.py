"""Constrained DARTS (Maile et al., seed 003; spec 003) in the DARTS CNN space on CIFAR-10, one
config per row of the paper's Table 1:

    python -m experiments.search --config=experiments/configs/constrained_cnn.py:pr_fimt \
        --workdir=runs/pr_fimt

VARIANT is ``darts``, or ``+``-joined parts written with ``_``: ``cs10``, ``fimt``, ``crb``,
``pr``, ``pr_fimt``, ``pr_fimt_crb``, ``admm``, ``admm_fimt``, ``admm_fimt_crb``, ``fimt_crb``.
All use the paper's first-order gradients and DARTS's settings otherwise (darts_cnn.py: 8 cells,
C=16, 50 epochs, batch 64, SGD 0.025 cosine to 0.001, alpha Adam 3e-4, betas (0.5, 0.999),
wd 1e-3). From the paper: CS10 and FIMT target 10 weight steps per architecture step, with the
train/val split at 10/11 = 90.91 %; FIMT's EWMA weight 0.2; PR rho_p = 0.1 ramped by c from 0 to
1; ADMM rho_a = 0.1, z and u every 10 architecture steps, lambda_u = 0.8; CRB drops ``none``, adds
the node batch norm and turns alpha weight decay off. From the authors' later code (DARTS-PRIME):
FIMT tau0 = 1.0 and growth 1.05 (so shrink 1.05^-10).
"""

from experiments.configs import darts_cnn
from jaxnas.spaces import DARTS_OPS
from jaxnas.strategies import split_fraction

VARIANTS = ("darts", "cs10", "fimt", "crb", "fimt_crb", "pr", "pr_fimt", "pr_fimt_crb", "admm",
            "admm_fimt", "admm_fimt_crb")


def get_config(variant: str = "darts"):
    if variant not in VARIANTS:
        raise ValueError(f"Unknown constrained_cnn variant {variant!r}; use one of "
                         f"{', '.join(VARIANTS)}.")
    parts = set(variant.split("_"))
    c = darts_cnn.get_config()
    c.strategy.name = "constrained"
    c.strategy.activation = "crb" if "crb" in parts else "softmax"
    c.strategy.schedule = ("fimt" if "fimt" in parts else "constant" if "cs10" in parts
                           else "alternating")
    c.strategy.ratio = 10
    c.strategy.fimt_ewma = 0.2
    c.strategy.fimt_tau0 = 1.0
    c.strategy.fimt_growth = 1.05
    c.strategy.regularizer = ("proximity" if "pr" in parts else "admm" if "admm" in parts
                              else "none")
    c.strategy.rho_p = 0.1
    c.strategy.proximity_squared = False
    c.strategy.rho_a = 0.1
    c.strategy.admm_period = 10
    c.strategy.admm_decay = 0.8
    c.strategy.hypergradient = {"name": "first_order"}
    c.eigenvalue_every = 0
    c.space.ops = DARTS_OPS
    c.space.node_bn = False  # the node batch norm: CRB only (spec 003, ambiguity 10)
    if c.strategy.schedule != "alternating":
        c.train_portion = split_fraction(c.strategy.ratio)
        c.log_every = 10  # resolution of alpha_schedule.png (the paper's Fig. 5)
    if c.strategy.activation == "crb":
        c.space.ops = tuple(op for op in DARTS_OPS if op != "none")
        c.space.node_bn = True
        c.optim_alpha.weight_decay = 0.0
    return c
