"""BaLeNAS (Zhang thesis ch. 5) in the DARTS CNN space on CIFAR-10 (Table 5.1): balenas_nb201's
Variational Adam and M = 1 on the darts_cnn settings, with the hard-concrete depth regularizer
(eta1 = 0.05; gate temperature 2/3, stretch (-0.1, 1.1), Louizos et al.'s defaults).

    python -m experiments.search --config=experiments/configs/balenas_cnn.py:second_order \
        --workdir=runs/balenas_cnn

ORDER: ``second_order`` (default; the thesis's DARTS-space search, 1.3 GPU-days) or
``first_order``; ``--config.strategy.depth_weight=0`` is Table 5.1's "BaLeNAS w/o".
"""

from experiments.configs import darts_cnn
from experiments.configs.balenas_nb201 import balenas_settings


def get_config(order: str = "second_order"):
    c = balenas_settings(darts_cnn.get_config(), order)
    c.strategy.depth_weight = 0.05
    c.strategy.depth_temperature = 2.0 / 3.0
    c.strategy.depth_low = -0.1
    c.strategy.depth_high = 1.1
    return c
