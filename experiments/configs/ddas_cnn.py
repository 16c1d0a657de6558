"""DDAS in the DARTS CNN space on CIFAR-10 (Mills 2020, Ch. 3; spec 001 sections 2.1, 4): a
6-cell (4 normal, 2 reduction), C=16 supernet over the 8 DARTS operations, ``none`` included,
warmed up for 75 epochs with alpha = 1 (batch 64, SGD 0.025 cosine to 1e-3, momentum 0.9, wd
3e-4, clip 5), then 1,500 DDPG steps, each training the chosen cell for M=25 batches at the
constant lr 1e-3 and scoring it on the val half: reward Eq. 3.3, MLPs 3 x 256, Adam (0.9, 0.99)
with lr 1e-4 (actor) and 1e-3 (critic), gamma 0.99, tau 1e-3, |B_R| 64, replay 10^6.

VARIANT (Table 3.3): ``rs`` (1,500 random actions), ``nl`` (500 random + 1,000 with Z ~
U(-1e-5, 1e-5)), ``g`` (500 + 1,000 with Z ~ N(0, 0.05^2)), ``4s`` (500 + 500 Gaussian + 500
of Phase 4: Z = 0, OU bursts after 32 similar cells, the newest 500 transitions replayed).
``VARIANT-tiny`` is a CPU-sized run on 5,000 CIFAR-10 images. Thesis Table 3.1 (CIFAR-10, 20
cells): DDAS-NL 97.27 %, 3.23M parameters, 0.876 GFLOPS.

    python -m experiments.search --config=experiments/configs/ddas_cnn.py:nl --workdir=runs/ddas
    python -m experiments.search --config=experiments/configs/ddas_cnn.py:4s-tiny \
        --config.dataset=npz:../shared/data/cifar10_subset/cifar10_subset.npz --workdir=runs/d
"""

import ml_collections

from experiments.configs.common import search_defaults

VARIANTS = ("rs", "nl", "g", "4s")


def get_config(arg: str = "nl"):
    variant, _, size = arg.partition("-")
    if variant not in VARIANTS or size not in ("", "tiny"):
        raise ValueError(f"ddas_cnn.py takes VARIANT or VARIANT-tiny with VARIANT one of "
                         f"{VARIANTS} (e.g. ddas_cnn.py:4s), got {arg!r}.")
    c = search_defaults()
    c.dataset = "tfds:cifar10"
    c.batch_size = 64
    c.epochs = 75  # the alpha = 1 warm-up; the search steps follow
    c.space.name = "darts"
    c.space.C = 16
    c.space.layers = 6
    c.strategy = ml_collections.ConfigDict(dict(
        name="ddas", variant=variant, inner_steps=25, hidden=(256, 256, 256), actor_lr=1e-4,
        critic_lr=1e-3, betas=(0.9, 0.99), gamma=0.99, tau=1e-3, replay=1_000_000,
        batch_size=64, uniform_scale=1e-5, gaussian_std=0.05, ou_sigma=0.2, patience=32,
        similar_below=6, phase4_replay=500, eval_batches=390, bn="running", flops_per_mac=2))
    c.log_every = 15
    c.checkpoint_every = 150
    if size == "tiny":
        c.batch_size = 16
        c.epochs = 1
        c.epoch_steps = 2
        c.space.C = 4
        c.space.layers = 3
        c.strategy.update(inner_steps=2, hidden=(16, 16), batch_size=4, patience=2,
                          phase4_replay=2, eval_batches=1,
                          phases={"rs": (6, 0, 0), "4s": (2, 2, 4)}.get(variant, (2, 4, 0)))
        c.log_every = 2
        c.checkpoint_every = 4
    return c
