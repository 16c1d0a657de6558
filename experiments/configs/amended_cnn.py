"""Amended-DARTS (Bi et al., seed 004) in the DARTS CNN space on CIFAR-10: eta = 0.1, searched to
convergence (100 epochs), batch 96, alpha Adam 3e-4, betas (0.5, 0.999), wd 1e-3.

``--config=experiments/configs/amended_cnn.py:s1`` applies the paper's search/evaluation
consistency changes (space S1): 8 fixed edges per cell (node i <- node i-1 and c_{k-2}), the 7
operations without ``none``, width 36, cutout 16, an auxiliary tower (weight 0.4) and drop-path
during search (the paper's "Dropout"; DARTS's drop-path 0.2 rising linearly over the epochs, spec
004 section 8.11).
"""

from experiments.configs.common import search_defaults


def get_config(variant: str = "standard"):
    if variant not in ("standard", "s1"):
        raise ValueError(f"Unknown amended_cnn variant {variant!r}; use 'standard' or 's1'.")
    c = search_defaults()
    c.dataset = "tfds:cifar10"
    c.batch_size = 96
    c.epochs = 100
    c.space.name = "darts"
    c.space.C = 16
    c.space.layers = 8
    c.space.edges = "all"
    c.space.auxiliary = False
    c.space.ops = ("none", "max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3",
                   "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5")
    c.strategy.name = "amended"
    c.strategy.eta = 0.1
    c.strategy.hessian_weight_decay = 0.0
    # Each second-order product its own jvp: the scanned edges recompute their activations
    # anyway, and one shared linearization ran out of 23 GB (BENCHMARKS.md).
    c.strategy.linearize = False
    c.log_every = 50
    c.checkpoint_every = 1000
    c.eigenvalue_every = 260  # about once an epoch
    if variant == "s1":
        c.space.edges = "fixed"
        c.space.C = 36
        c.space.auxiliary = True
        c.space.ops = c.space.ops[1:]
        c.cutout = 16
        c.drop_path = 0.2
        c.strategy.linearize = True  # drop-path unrolls the edges; S1 not measured either way
    return c
