"""DARTS (first order) on NAS-Bench-201, CIFAR-10: the NAS-Bench-201 paper's DARTS-V1 baseline as
its code (AutoDL-Projects, ``exps/NAS-Bench-201-algos/DARTS-V1.py`` with
``configs/nas-benchmark/algos/DARTS.config``) runs it.

Sources: from ``DARTS.config``: 50 epochs, batch 64, SGD lr 0.025 cosine to 0.001, momentum 0.9
with Nesterov, weight decay 5e-4. From ``DARTS-V1.py`` and its script: gradient clip 5, the
weights updated before the architecture at each step, alpha Adam 3e-4, betas (0.5, 0.999), weight
decay 1e-3. From the NAS-Bench-201 paper: C=16, N=5, CIFAR-10's training set split in halves.
(The code anneals the learning rate every iteration; here it steps once per epoch, as in DARTS.)

    python -m experiments.search --config=experiments/configs/darts_nb201.py --workdir=runs/darts_nb201
"""

from experiments.configs.common import search_defaults


def get_config():
    c = search_defaults()
    c.dataset = "tfds:cifar10"
    c.batch_size = 64
    c.epochs = 50
    c.space.name = "nb201"
    c.space.C = 16
    c.space.N = 5
    c.optim_w.update(weight_decay=5e-4, nesterov=True)
    c.strategy.name = "darts"
    c.strategy.alpha_first = False  # DARTS-V1 of NAS-Bench-201: weights, then architecture
    c.log_every = 50
    c.checkpoint_every = 1000
    c.eigenvalue_every = 390  # about once an epoch
    return c
