"""Search strategies: how the architecture is parameterized, sampled, updated and derived.

``get_strategy(name, space, optim_alpha, **options)`` builds one from a config
(``config.strategy``, ``config.optim_alpha``); ``registry`` lists them. ``BilevelSearch`` is the
DARTS family with pluggable relaxation, hypergradient, update rule and schedule;
``SinglePathSearch`` the single-path family (RandomNAS, GDAS, NSAS, EN²AS, E²NAS); ``TNDSearch``
REINFORCE on non-differentiable rewards (TND-NAS).
"""

from jaxnas.strategies.balenas import BaLeNASSearch, select_from_posterior
from jaxnas.strategies.base import SearchState, Strategy, step_key
from jaxnas.strategies.bilevel import BilevelSearch, BilevelState
from jaxnas.strategies.constrained import ConstrainedSearch
from jaxnas.strategies.e2nas import E2NASSearch
from jaxnas.strategies.en2as import EN2ASSearch
from jaxnas.strategies.gdas import GDASSearch
from jaxnas.strategies.nsas import NSASSearch
from jaxnas.strategies.options import hypergradient_method, update_rule
from jaxnas.strategies.problem import SearchProblem, WeightStep, accuracy, cross_entropy
from jaxnas.strategies.randomnas import RandomNASSearch, Selection
from jaxnas.strategies.registry import STRATEGIES, get_strategy, register_strategy
from jaxnas.strategies.relaxations import (ClippedReLU, HardConcreteDepth, Softmax,
                                           gumbel_straight_through)
from jaxnas.strategies.schedules import FIMT, Alternating, Constant, split_fraction
from jaxnas.strategies.single_path import SinglePathSearch
from jaxnas.strategies.tnd import TNDSearch
