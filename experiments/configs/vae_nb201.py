"""The graph VAE of E²NAS, trained on all 15,625 NAS-Bench-201 cells.

    python -m experiments.train_vae --config=experiments/configs/vae_nb201.py --workdir=runs/vae
    python -m experiments.train_vae --config=experiments/configs/vae_nb201.py:small \
        --workdir=runs/vae_small

The default sizes are those of the E²NAS code (D-VAE with hidden 501, latent 30, bidirectional
encoder; Adam 1e-4, batch 32, 100 epochs; D-VAE's KL weight 0.005): about 2 min 15 s an epoch
on a shared 2-core CPU, and 99.98% of the cells decode back from their means after 10 epochs.
``:small`` (hidden 64, Adam 1e-3, 20 epochs) trains in about two minutes on a 2-core CPU and
decodes 99.97% of the cells back. The latent stays 30-dimensional in both: the search's
``ste_logits`` mode reads it as 6 x 5 operation logits.
"""

import ml_collections


def get_config(size: str = ""):
    if size not in ("", "small"):
        raise ValueError(f"Unknown config argument {size!r}; use vae_nb201.py (the full size) "
                         "or vae_nb201.py:small.")
    c = ml_collections.ConfigDict()
    c.seed = 0
    c.space = "nb201"  # the cells the VAE encodes
    c.model = ml_collections.ConfigDict(dict(hidden=501, latent=30, bidirectional=True))
    c.kl_weight = 0.005  # the loss is nll + kl_weight * kl (1: the negative ELBO)
    c.lr = 1e-4  # Adam
    c.batch_size = 32
    c.epochs = 100
    c.max_steps = 0  # stop early after this many steps (0: run all epochs)
    c.log_every = 100  # steps
    c.checkpoint_every = 1000  # steps
    c.keep_checkpoints = 3
    c.eval_every = 10  # epochs between injectivity checks (0: only at the end)
    c.prior_samples = 1000  # prior draws decoded for the report (0: none)
    if size == "small":
        c.model.hidden = 64
        c.lr = 1e-3
        c.epochs = 20
        c.eval_every = 5
        c.checkpoint_every = 500
    return c
