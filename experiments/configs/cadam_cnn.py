"""CADAM in the DARTS CNN space on CIFAR-10 (Mills 2020, Ch. 4; spec 001 sections 2.2-2.3, 4):
an 8-cell, C=16 supernet over the 7 DARTS operations (``none`` only marks the edges a cell does
not use) pre-trained by uniform single-path steps (batch 250, SGD 0.025 cosine to 1e-3, momentum
0.9, wd 3e-4, clip 5, Cutout 16; the thesis's 10,000 epochs), then frozen and searched by 20k
CADAM queries of its val accuracy (eval-mode batch norm, cached per cell): K=500, tau 0.95,
|B_R| 64, xi 5e-5, C_max 1, a random warm-up of W=3000 queries, MLPs (256, 256, 256), Adam
(0.9, 0.99) with actor lr 1e-8 (as printed) and critic 1e-4, the newest 5k transitions replayed.
The final cell is the top-K's best by preliminary test accuracy. Thesis Table 4.2: CADAM 97.46 +-
0.09 % CIFAR-10 test accuracy, 3.7M parameters, after retraining.

``eval_batches`` sets the evaluation set (the first val batches of the run; the whole val half
is 25,000 / 250 = 100). ``:tiny`` is a CPU-sized run on 5,000 CIFAR-10 images:

    python -m experiments.search --config=experiments/configs/cadam_cnn.py --workdir=runs/cadam
    python -m experiments.search --config=experiments/configs/cadam_cnn.py:tiny \
        --config.dataset=npz:../shared/data/cifar10_subset/cifar10_subset.npz --workdir=runs/c
"""

import ml_collections

from experiments.configs.common import search_defaults

VARIANTS = ("", "tiny")


def get_config(variant: str = ""):
    if variant not in VARIANTS:
        raise ValueError(f"cadam_cnn.py takes no argument or ':tiny', got {variant!r}.")
    c = search_defaults()
    c.dataset = "tfds:cifar10"
    c.batch_size = 250
    c.epochs = 10000  # pre-training; the queries follow
    c.cutout = 16
    c.space.name = "darts"
    c.space.C = 16
    c.space.layers = 8
    c.strategy = ml_collections.ConfigDict(dict(
        name="cadam", queries=20000, k=500, tau=0.95, batch_size=64, xi=5e-5, max_cycles=1,
        warmup=3000, hidden=(256, 256, 256), actor_lr=1e-8, critic_lr=1e-4, betas=(0.9, 0.99),
        replay=5000, eval_batches=100, bn="running", select_on="test", flops_per_mac=2))
    c.log_every = 100
    c.checkpoint_every = 1000
    if variant == "tiny":
        c.batch_size = 32
        c.epochs = 2
        c.epoch_steps = 20
        c.space.C = 4
        c.space.layers = 3
        c.strategy.update(queries=40, k=8, batch_size=8, warmup=10, hidden=(32, 32),
                          replay=32, eval_batches=2)
        c.log_every = 10
        c.checkpoint_every = 20
    return c
