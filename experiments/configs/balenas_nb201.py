"""BaLeNAS (Zhang thesis ch. 5) on NAS-Bench-201, CIFAR-10: the darts_nb201 settings with the
alpha Adam replaced by Variational Adam and the hypergradient taken at one posterior sample
(M = 1, Table 5.2's best).

    python -m experiments.search --config=experiments/configs/balenas_nb201.py:second_order \
        --workdir=runs/balenas

ORDER: ``second_order`` (default; Table 5.2's BaLeNAS (2nd), DARTS's unrolled hypergradient with
xi = the weight learning rate) or ``first_order``. Variational Adam: the reference settings of the
thesis's code (a commented line of the iDARTS repository): khan2018 form, lr 3e-4, betas
(0.5, 0.999), prior and initial precision 1, N = 25,000 (CIFAR-10's half split); the prior
replaces DARTS's alpha weight decay. Set optim_alpha.num_data to the val split's size for other
data (``--config.optim_alpha.form=thesis`` for Eqs. 5.16-5.17 as printed).
"""

import ml_collections

from experiments.configs import darts_nb201

ORDERS = {"second_order": {"name": "unrolled", "hvp": "exact", "eps": 0.01},
          "first_order": {"name": "first_order"}}


def balenas_settings(c, order: str):
    """Turns the DARTS config ``c`` into BaLeNAS's with the hypergradient of ``order``."""
    if order not in ORDERS:
        raise ValueError(f"Unknown BaLeNAS order {order!r}; use one of {', '.join(ORDERS)}.")
    c.strategy = ml_collections.ConfigDict({"name": "balenas", "num_samples": 1,
                                            "hypergradient": ORDERS[order],
                                            "depth_weight": 0.0})
    c.optim_alpha = ml_collections.ConfigDict(dict(
        name="vadam", form="khan2018", lr=3e-4, b1=0.5, b2=0.999, momentum=0.0, num_data=25000,
        prior_precision=1.0, init_precision=1.0))
    return c


def get_config(order: str = "second_order"):
    return balenas_settings(darts_nb201.get_config(), order)
