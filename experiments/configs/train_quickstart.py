"""Quickstart: retrain a DARTS-space genotype as a tiny 3-cell network (C=8) on the embedded 8x8
digits (no download); under a minute on a laptop CPU.

    python -m experiments.train --genotype=DARTS_V2 \
        --config=experiments/configs/train_quickstart.py --workdir=runs/train_quickstart

8x8 images are too small for the auxiliary head, and digits are not flipped or cropped.
"""

from experiments.configs import train_darts_cifar


def get_config():
    c = train_darts_cifar.get_config()
    c.dataset = "digits"
    c.space.update(C=8, layers=3)
    c.aux_weight = 0.0
    c.augment = False
    c.cutout = 0
    c.batch_size = 32
    c.epochs = 5
    c.optim_w.lr = 0.05
    c.eval_every = 1
    c.log_every = 10
    c.checkpoint_every = 50
    return c
