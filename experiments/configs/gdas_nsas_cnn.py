"""GDAS-NSAS in the DARTS CNN space on CIFAR-10 (Zhang thesis ch. 3): GDAS's DARTS-space settings
(``gdas_cnn.py``) with NSAS (M=2, beta=0.2 as on NB201); ``:c`` is GDAS-NSAS-C (the fixed-edge
cell, only operations searched). Table 3.1: GDAS-NSAS 2.75±0.08, GDAS-NSAS-C 2.70±0.07 % CIFAR-10
test error after retraining.

    python -m experiments.search --config=experiments/configs/gdas_nsas_cnn.py --workdir=runs/gdas_nsas_cnn
"""

from experiments.configs import gdas_cnn, gdas_nsas_nb201


def get_config(variant: str = ""):
    if variant not in ("", "c"):
        raise ValueError(f"gdas_nsas_cnn.py takes no argument or ':c' (GDAS-NSAS-C), got "
                         f"{variant!r}.")
    c = gdas_cnn.get_config()
    c.strategy = gdas_nsas_nb201.get_config().strategy
    if variant == "c":
        c.space.edges = "fixed"
    return c
