"""RandomNAS (random search with weight sharing; Li and Talwalkar 2019) on NAS-Bench-201,
CIFAR-10: the NAS-Bench-201 paper's RANDOM-NAS baseline settings (AutoDL-Projects
``configs/nas-benchmark/algos/RANDOM.config``): 250 epochs, batch 64, SGD lr 0.025 cosine to 0.001,
momentum 0.9 with Nesterov, weight decay 5e-4, gradient clip 5, C=16, N=5; one uniformly sampled
path trained per step. The final architecture is selected by regularized evolution (or
``--config.strategy.selection=random``: 100 random candidates) on the val accuracy of paths with
the supernet's weights. Zhang thesis Table 3.3: RandomNAS 84.07±3.61 / RandomNAS* 88.14±0.21
(CIFAR-10 test).

    python -m experiments.search --config=experiments/configs/randomnas_nb201.py --workdir=runs/randomnas_nb201
"""

import ml_collections

from experiments.configs import darts_nb201

def get_config():
    c = darts_nb201.get_config()  # NAS-Bench-201's shared settings (optimizer, size, batch)
    c.epochs = 250
    c.strategy = ml_collections.ConfigDict(dict(
        name="randomnas", selection="evolution", num_candidates=100, population=20,
        sample_size=5, cycles=80, eval_batches=1))
    c.eigenvalue_every = 0  # no differentiable architecture parameters
    c.log_every = 100
    return c
