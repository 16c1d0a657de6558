"""A black-box search on the NAS-Bench-201 table (no supernet): CADAM (Mills thesis, ch. 4) or
one of its Table 4.1 baselines, random search, regularized evolution or REINFORCE, each query
one lookup of a cell's accuracy (``jaxnas.engine.oracle_loop``, ``jaxnas.blackbox``).

ALGO is ``cadam``, ``rs``, ``rea`` or ``reinforce``. Fields: ``seed`` (the first seed) and
``seeds`` (how many: seeds seed..seed+seeds-1 run one after the other); ``oracle.dataset``
(cifar10, cifar100 or imagenet16-120), ``oracle.metric`` (the accuracy searched on: ``val`` or
``test`` after 200 epochs; also ``val_12``, ``test_12``, ``nats_test``), ``oracle.queries``
(oracle evaluations per search, repeats included), ``oracle.settings`` (the search's own
settings, at their defaults: for CADAM the thesis's NB201 values, ``CadamConfig``; for RS
``distinct``; for REA ``population``, ``sample_size``; for REINFORCE ``lr``, ``momentum``,
``init_scale``, NAS-Bench-201's), and ``nb201_table`` (the CSV table; default the shared copy).

    python -m experiments.search --config=experiments/configs/oracle_nb201.py:cadam \
        --workdir=runs/cadam_c10 [--config.seeds=10] [--config.oracle.settings.actor_lr=1e-4]
"""

import ml_collections
from ml_collections import config_dict

from experiments.configs.common import shared_nb201_table
from jaxnas.engine.oracle_loop import ALGOS, default_settings


def get_config(algo: str | None = None):
    if algo not in ALGOS:
        raise ValueError(f"oracle_nb201.py takes the search as its argument, one of "
                         f"{', '.join(ALGOS)} (e.g. oracle_nb201.py:cadam), got {algo!r}.")
    settings = ml_collections.ConfigDict()
    for name, value in default_settings(algo).items():
        # A field at None cannot be set from the command line without a type; the one None
        # default, CADAM's warmup (W random steps instead of epsilon-greedy), is an int.
        settings[name] = config_dict.placeholder(int) if value is None else value
    c = ml_collections.ConfigDict()
    c.seed = 1
    c.seeds = 1
    c.nb201_table = shared_nb201_table()
    c.oracle = ml_collections.ConfigDict(dict(algo=algo, dataset="cifar10", metric="val",
                                              queries=500))
    c.oracle.settings = settings
    return c
