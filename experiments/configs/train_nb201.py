"""Retraining a NAS-Bench-201 cell with the benchmark's own training pipeline (Dong & Yang,
2020): N=5 cells per stage, C=16, SGD with Nesterov momentum 0.9, lr 0.1 cosine to 0, weight
decay 5e-4, batch 256, 200 epochs, pad-4 crop + flip, no cutout, auxiliary head or drop-path.

    python -m experiments.train --genotype=runs/a1/genotype.json \
        --config=experiments/configs/train_nb201.py --workdir=runs/a1-eval

NB201 anneals the learning rate every iteration; here it steps once per epoch, as in DARTS.
"""

from experiments.configs import train_darts_cifar


def get_config():
    c = train_darts_cifar.get_config()
    c.space = dict(name="nb201", C=16, N=5)
    c.aux_weight = 0.0
    c.drop_path = 0.0
    c.cutout = 0
    c.batch_size = 256
    c.epochs = 200
    c.optim_w.update(lr=0.1, lr_min=0.0, momentum=0.9, nesterov=True, weight_decay=5e-4,
                     grad_clip=0.0)
    c.checkpoint_every = 500
    return c
