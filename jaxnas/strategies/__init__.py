"""Search strategies: how the architecture is parameterized and updated.

``get_strategy(name, **options)`` builds one from a config (``config.strategy``):

| name | method | per step |
|---|---|---|
| ``darts`` | DARTS first order | alpha (``FirstOrder``), then 1 weight step |
| ``darts2`` | DARTS second order | alpha (``Unrolled(lr, 1)``, exact or finite-difference), 1 weight step |
| ``idarts`` | iDARTS | T weight steps, then alpha (``Neumann(gamma, K)``) |
| ``amended`` | Amended-DARTS | alpha (``Amended(eta)``), then 1 weight step |
"""

from jaxnas.strategies.base import SearchState, Strategy
from jaxnas.strategies.gradient import GradientSearch
from jaxnas.strategies.problem import SearchProblem, accuracy, cross_entropy
from jaxnas.strategies.registry import STRATEGIES, get_strategy
