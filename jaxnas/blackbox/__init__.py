"""Black-box searches on the NAS-Bench-201 accuracy table (no supernet): CADAM (Mills 2020,
spec 001 Ch. 4), random search, regularized evolution and REINFORCE, the oracle-querying rows
of the thesis's Table 4.1.

Each search is a pure function of its seed, ``run_X(oracle, key_or_seed, queries=500,
**settings) -> History`` (``jaxnas.blackbox.history``), over an ``NB201Oracle``
(``jaxnas.benchmarks.oracle``); a query is one oracle evaluation, repeats included.
"""

from jaxnas.blackbox.cadam import (CadamConfig, CadamState, CadamStepInfo, cadam_search,
                                   cadam_step, init_cadam, run_cadam)
from jaxnas.blackbox.evolution import run_rea
from jaxnas.blackbox.history import History, make_history
from jaxnas.blackbox.random_search import expected_best, run_random_search
from jaxnas.blackbox.reinforce import run_reinforce

SEARCHES = {"cadam": run_cadam, "rs": run_random_search, "rea": run_rea,
            "reinforce": run_reinforce}
"""The searches by short name: ``SEARCHES[name](oracle, seed, queries, **settings)``."""

__all__ = ["SEARCHES", "CadamConfig", "CadamState", "CadamStepInfo", "History", "cadam_search",
           "cadam_step", "expected_best", "init_cadam", "make_history", "run_cadam",
           "run_random_search", "run_rea", "run_reinforce"]
