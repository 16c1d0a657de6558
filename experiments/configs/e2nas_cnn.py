"""E²NAS and E²NAS-R in the DARTS CNN space on CIFAR-10 (Zhang thesis Sec. 4.4.2; spec 002
section 3): the DARTS search network (8 cells, C=16, batch 32 as the thesis's Table 4.6 setting,
SGD 0.025 cosine to 0.001, momentum 0.9, wd 3e-4, clip 5; Adam 3e-4, betas (0.5, 0.999), wd 1e-3
on the latents; the training set split in halves) for 100 epochs, searching the latent spaces of
the graph VAE trained on DARTS cells (``vae_darts.py``), one latent for the normal and one for
the reduction cell, with epsilon = 0.5 (Eq. 4.12), gamma = Sig_gamma(10) (Eq. 4.16) and an
archive of 1000. The gradient of L_val goes through the decoder (``decoder_st``): the authors'
``ste_logits`` reads the latent as operation logits, which a 30-dimensional latent cannot be for
14 x 8 DARTS weights. Table 4.6: E²NAS 2.58±0.09 %, E²NAS-R 2.42±0.07 % CIFAR-10 test error.

    python -m experiments.train_vae --config=experiments/configs/vae_darts.py \
        --workdir=runs/vae_darts
    python -m experiments.search --config=experiments/configs/e2nas_cnn.py \
        --workdir=runs/e2nas_cnn --config.strategy.vae=runs/vae_darts

``:r`` is E²NAS-R: Eq. 4.15's depth regularizer with zeta = 0.05 and M = 10 noisy decodings.
``:digits`` (combinable: ``:r,digits``) is a demo that runs in minutes on a CPU: the embedded 8x8
digits, C=4, 3 cells, 2 epochs of 10 steps, latent lr 0.1, with the small VAE
(``vae_darts.py:small``) at ``runs/vae_darts_small``.
"""

from experiments.configs import darts_cnn, e2nas_nb201

ARGS = ("r", "digits")


def get_config(args: str = ""):
    chosen = [a for a in args.split(",") if a]
    unknown = [a for a in chosen if a not in ARGS]
    if unknown:
        raise ValueError(f"e2nas_cnn.py takes ':r', ':digits' or both (':r,digits'), got "
                         f"{args!r}.")
    c = darts_cnn.get_config()
    c.batch_size = 32
    c.epochs = 100
    c.eigenvalue_every = 0
    c.strategy = e2nas_nb201.get_config("decoder_st").strategy  # the NB201 search's settings
    c.strategy.vae = "runs/vae_darts"
    c.strategy.update(depth_weight=0.0, depth_samples=10, depth_noise=0.1)
    if "r" in chosen:
        c.strategy.depth_weight = 0.05
    if "digits" in chosen:
        c.dataset = "digits"
        c.augment = False
        c.epochs = 2
        c.epoch_steps = 10
        c.space.C = 4
        c.space.layers = 3
        c.strategy.vae = "runs/vae_darts_small"
        c.optim_alpha.lr = 0.1  # 20 steps: a larger latent step than 3e-4 (see e2nas_nb201.py)
        c.log_every = 2
        c.checkpoint_every = 10
    return c
