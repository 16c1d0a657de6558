"""E²NAS on NAS-Bench-201, CIFAR-10 (Zhang thesis ch. 4; spec 002 section 3): GDAS's NB201
settings (``gdas_nb201.py``: 240 epochs, batch 64, SGD 0.025 cosine to 0.001, Nesterov momentum
0.9, wd 5e-4, clip 5; Adam 3e-4, betas (0.5, 0.999), wd 1e-3 on the latent; C=16, N=5), the
search in the latent space of the graph VAE trained by ``experiments.train_vae``, with epsilon =
0.5 (Eq. 4.12), gamma = Sig_gamma(10) (Eq. 4.16) and an archive of 1000. Table 4.1: E²NAS
90.94±0.83 val / 93.89±0.47 test on CIFAR-10.

    python -m experiments.train_vae --workdir=runs/vae
    python -m experiments.search --config=experiments/configs/e2nas_nb201.py \
        --workdir=runs/e2nas_nb201 --config.strategy.vae=runs/vae

``:decoder_st`` takes the gradient of L_val through the decoder (spec 3.6) instead of the
authors' straight-through logits. ``:digits`` (combinable: ``:decoder_st,digits``) is a demo
that runs in minutes on a CPU: the embedded 8x8 digits, C=4, one cell per stage, 2 epochs of
10 steps, latent lr 0.1, with the small VAE (``vae_nb201.py:small``) at ``runs/vae_small``.
"""

import ml_collections

from experiments.configs import gdas_nb201

ARGS = ("decoder_st", "digits")


def get_config(args: str = ""):
    chosen = [a for a in args.split(",") if a]
    unknown = [a for a in chosen if a not in ARGS]
    if unknown:
        raise ValueError(f"e2nas_nb201.py takes ':decoder_st', ':digits' or both "
                         f"(':decoder_st,digits'), got {args!r}.")
    c = gdas_nb201.get_config()
    c.strategy = ml_collections.ConfigDict(dict(
        name="e2nas", vae="runs/vae", mode="ste_logits", epsilon=0.5,
        exploration="sigmoid", b=10.0, gamma=0.5, archive_size=1000, shrinkage=0.1,
        init_scale=1e-3))
    if "decoder_st" in chosen:
        c.strategy.mode = "decoder_st"
    if "digits" in chosen:
        c.dataset = "digits"
        c.augment = False
        c.batch_size = 32
        c.epochs = 2
        c.epoch_steps = 10
        c.space.C = 4
        c.space.N = 1
        c.strategy.vae = "runs/vae_small"
        c.optim_alpha.lr = 0.1  # 20 steps: a larger latent step than GDAS's 3e-4 (the
        # latent means of distinct cells lie about 2 apart), as quickstart does for DARTS
        c.log_every = 2
        c.checkpoint_every = 10
    return c
