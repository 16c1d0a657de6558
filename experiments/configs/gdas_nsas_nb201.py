"""GDAS-NSAS on NAS-Bench-201, CIFAR-10 (Zhang thesis ch. 3): GDAS's settings (``gdas_nb201.py``)
with NSAS's constraint archive, M=2 and beta=0.2 (the thesis's NB201 setting); the variants of
Tables 3.5-3.7 through ``--config.strategy.variant``. Table 3.3: GDAS-NSAS 93.55±0.16 CIFAR-10
test (GDAS* 93.40±0.49).

    python -m experiments.search --config=experiments/configs/gdas_nsas_nb201.py --workdir=runs/gdas_nsas_nb201
"""

from experiments.configs import gdas_nb201


def get_config():
    c = gdas_nb201.get_config()
    c.strategy.name = "nsas"
    c.strategy.base = "gdas"
    c.strategy.size = 2
    c.strategy.beta = 0.2
    c.strategy.variant = "nsas"
    c.strategy.recent = 50
    c.strategy.num_draws = 10
    c.strategy.k = 0  # M - 1
    return c
