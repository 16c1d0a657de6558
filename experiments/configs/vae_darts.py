"""The graph VAE of E²NAS for the DARTS space, trained on uniformly drawn DARTS cells.

    python -m experiments.train_vae --config=experiments/configs/vae_darts.py --workdir=runs/vae_darts
    python -m experiments.train_vae --config=experiments/configs/vae_darts.py:small \
        --workdir=runs/vae_darts_small

A DARTS cell has about 10^9 variants (180 ways to pick the nodes' inputs, 7^8 operations), so the
VAE trains on ``cells`` of them drawn from the seed and its injectivity is checked on
``eval_cells`` other draws. The thesis gives no VAE for this space; the default sizes are the
NB201 VAE's (``vae_nb201.py``: hidden 501, latent 30, bidirectional, Adam 1e-4, batch 32, KL
weight 0.005) over 50,000 cells for 20 epochs (31,240 steps). ``:small`` (hidden 64, Adam 1e-3,
20,000 cells, 10 epochs) is for tests and the README's demo.
"""

from experiments.configs import vae_nb201


def get_config(size: str = ""):
    if size not in ("", "small"):
        raise ValueError(f"Unknown config argument {size!r}; use vae_darts.py (the full size) "
                         "or vae_darts.py:small.")
    c = vae_nb201.get_config(size)
    c.space = "darts"
    c.model.positions = True  # vertices 2k, 2k + 1 are node k's operations (jaxnas.vae.model)
    c.cells = 50_000  # drawn cells an epoch goes through
    c.eval_cells = 10_000  # other drawn cells for the injectivity check
    c.epochs = 20
    c.eval_every = 5
    if size == "small":
        c.cells = 20_000
        c.epochs = 10
        c.eval_every = 5
    return c
