"""GDAS on NAS-Bench-201, CIFAR-10, as the NAS-Bench-201 paper's GDAS baseline runs it
(AutoDL-Projects ``configs/nas-benchmark/algos/GDAS.config`` and ``exps/NAS-Bench-201-algos/
GDAS.py``): 240 epochs, batch 64, SGD lr 0.025 cosine to 0.001, momentum 0.9 with Nesterov, weight
decay 5e-4, gradient clip 5; the weights first, then the architecture on a val batch; Adam 3e-4,
betas (0.5, 0.999), weight decay 1e-3 on the logits; Gumbel temperature 10 to 0.1, linear per
epoch; C=16, N=5. Zhang thesis Table 3.3: GDAS 93.51±0.13 / GDAS* 93.40±0.49 (CIFAR-10 test).

    python -m experiments.search --config=experiments/configs/gdas_nb201.py --workdir=runs/gdas_nb201
"""

import ml_collections

from experiments.configs import darts_nb201

def get_config():
    c = darts_nb201.get_config()  # NAS-Bench-201's shared settings (optimizer, size, batch)
    c.epochs = 240
    c.strategy = ml_collections.ConfigDict(dict(name="gdas", tau_max=10.0, tau_min=0.1))
    c.eigenvalue_every = 0
    c.log_every = 100
    return c
