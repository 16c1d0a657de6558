"""RandomNAS-NSAS in the DARTS CNN space on CIFAR-10 (Zhang thesis ch. 3): RandomNAS's
DARTS-space settings (``randomnas_cnn.py``) with NSAS (M=5, beta=0.5 as on NB201; the thesis
gives no DARTS-space values). ``:c`` is NSAS-C, the fixed cell depth: each node reads from the
node before it and from the cell input c_{k-2} (Amended-DARTS's fixed-edge cell,
``space.edges = "fixed"``: the reading of "the previous node and the previous cell" that gives
every node two distinct inputs); only the operations are searched. Table 3.1: RandomNAS-NSAS 2.59±0.06, RandomNAS-NSAS-C 2.65±0.05 %
CIFAR-10 test error after retraining.

    python -m experiments.search --config=experiments/configs/randomnas_nsas_cnn.py --workdir=runs/randomnas_nsas_cnn
"""

from experiments.configs import randomnas_cnn, randomnas_nsas_nb201


def get_config(variant: str = ""):
    if variant not in ("", "c"):
        raise ValueError(f"randomnas_nsas_cnn.py takes no argument or ':c' (NSAS-C), got "
                         f"{variant!r}.")
    c = randomnas_cnn.get_config()
    c.strategy = randomnas_nsas_nb201.get_config().strategy
    if variant == "c":
        c.space.edges = "fixed"
    return c
