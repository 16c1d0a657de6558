"""RandomNAS-NSAS on NAS-Bench-201, CIFAR-10 (Zhang thesis ch. 3): RandomNAS's settings
(``randomnas_nb201.py``) with NSAS's constraint archive, M=5 and beta=0.5 (the thesis's NB201
setting, Table 3.4); ``--config.strategy.variant`` picks the constraint selection of Tables
3.5-3.7 (nsas, nsas_g, nsas_lg, rg, low, low_r; those tables use M=2). The recent-path FIFO
(50), Algorithm 2's draws (10) and the kNN (M - 1) are not given in the thesis (spec 2.6).
Table 3.3: RandomNAS-NSAS 92.61±0.10 CIFAR-10 test (RandomNAS* 88.14±0.21).

    python -m experiments.search --config=experiments/configs/randomnas_nsas_nb201.py --workdir=runs/randomnas_nsas_nb201
"""

from experiments.configs import randomnas_nb201


def get_config():
    c = randomnas_nb201.get_config()
    c.strategy.name = "nsas"
    c.strategy.base = "randomnas"
    c.strategy.size = 5
    c.strategy.beta = 0.5
    c.strategy.variant = "nsas"
    c.strategy.recent = 50
    c.strategy.num_draws = 10
    c.strategy.k = 0  # M - 1
    return c
