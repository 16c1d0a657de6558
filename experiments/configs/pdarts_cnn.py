"""P-DARTS (Chen et al., ICCV 2019) in the DARTS CNN space on CIFAR-10: DARTS's first-order
gradient in three stages of 5, 11 and 17 cells at C=16 (fresh weights, alpha and optimizers per
stage), 25 epochs each of which the first 10 train the weights alone, the 8 DARTS operations on
every edge shrunk to 5 and then 3 by dropping the lowest-weighted ones after stages 1 and 2; the
cell is the last stage's DARTS derivation (the strongest operation other than ``none`` per edge,
two inputs per node). Batch 96, SGD 0.025 cosine to 0, momentum 0.9, wd 3e-4, clip 5; alpha Adam
6e-4, (0.5, 0.999), 1e-3; the settings of the authors' ``train_search.py``.

Not implemented: P-DARTS's dropout on the skip connections (0.0, 0.4, 0.7 per stage) and its
limit of two skip connections in the derived normal cell. Table V of TND-NAS: P-DARTS 2.50 %
CIFAR-10 test error with 3.4M parameters.

    python -m experiments.search --config=experiments/configs/pdarts_cnn.py --workdir=runs/pdarts
"""

import ml_collections

from experiments.configs.common import search_defaults


def get_config():
    c = search_defaults()
    c.dataset = "tfds:cifar10"
    c.batch_size = 96
    c.epochs = 25  # per stage
    c.space.name = "darts"
    c.space.C = 16
    c.space.layers = 5
    c.optim_w.lr_min = 0.0
    c.optim_alpha.lr = 6e-4
    c.strategy = ml_collections.ConfigDict(dict(name="darts", warmup_epochs=10))
    c.stages = ml_collections.ConfigDict(dict(
        drop=dict(normal=(3, 2, 0), reduce=(3, 2, 0)), space=dict(layers=(5, 11, 17)),
        final="derive"))
    c.log_every = 50
    c.checkpoint_every = 500
    return c
