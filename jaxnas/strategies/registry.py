"""Strategies by name, with their options (``config.strategy``) and update rule
(``config.optim_alpha``).

| name | method | per step |
|---|---|---|
| ``darts`` | DARTS first order | alpha (first order), then 1 weight step (``alpha_first``) |
| ``darts2`` | DARTS second order | alpha (``Unrolled(lr, 1)``, exact or finite-difference; ``virtual_step``), 1 weight step |
| ``idarts`` | iDARTS | T weight steps, then alpha (``Neumann(gamma, K)``) |
| ``amended`` | Amended-DARTS | alpha (``Amended(eta)``), then 1 weight step (``alpha_first``) |
| ``constrained`` | constrained DARTS | CRB, CS10/FIMT schedules, PR/ADMM (``constrained``) |
| ``balenas`` | BaLeNAS | Variational Adam on a Gaussian posterior (``balenas``) |
| ``randomnas`` | RandomNAS (RSPS) | 1 single-path weight step on a uniform path; selection at the end (``randomnas``) |
| ``gdas`` | GDAS | 1 single-path weight step on a Gumbel path, then alpha through a second sample (``gdas``) |
| ``nsas`` | NSAS on RandomNAS or GDAS | the base step with Eq. 3.6's constraint paths in the weight loss (``nsas``) |
| ``en2as`` | EN²AS | 1 single-path weight step on a random (warm-up) or novelty-ES path; selection at the end (``en2as``) |
| ``e2nas`` | E²NAS, E²NAS-R | 1 single-path weight step on the decoded path with Eq. 4.12's complementation, then the VAE latents (one per cell type) along Eq. 4.7, or Eq. 4.15 with the depth term (``e2nas``) |
| ``cadam`` | CADAM (DARTS) | uniform Alg. 2 single-path weight steps, then (``extra_steps``) one CADAM query of the frozen supernet per step; top-K by preliminary test accuracy (``cadam``) |
| ``ddas`` | DDAS (RS, NL, G, 4S) | M alpha = 1 weight steps (warm-up epochs), then (``extra_steps``) one DDPG action, M single-path weight steps on its cell and its val score per step (``ddas``) |
| ``tnd`` | TND-NAS | REINFORCE on M sampled paths' rewards (after the warm-up epochs), then 1 weight step (``tnd``); staged by ``config.stages`` |
"""

import inspect

from jaxnas.strategies.balenas import balenas
from jaxnas.strategies.bilevel import BilevelSearch
from jaxnas.strategies.cadam import cadam
from jaxnas.strategies.constrained import constrained
from jaxnas.strategies.ddas import ddas
from jaxnas.strategies.e2nas import e2nas
from jaxnas.strategies.en2as import en2as
from jaxnas.strategies.gdas import gdas
from jaxnas.strategies.nsas import nsas
from jaxnas.strategies.options import hypergradient_method, update_rule
from jaxnas.strategies.randomnas import randomnas
from jaxnas.strategies.schedules import Alternating
from jaxnas.strategies.tnd import tnd

_ADAM = ("adam",)


def _darts(space, optim_alpha=None, alpha_first: bool = True, warmup_epochs: int = 0):
    del space
    return BilevelSearch(hypergradient_method(None), update_rule(optim_alpha, _ADAM), "darts",
                         schedule=_order(alpha_first), warmup_epochs=warmup_epochs)


def _darts2(space, optim_alpha=None, hvp: str = "exact", eps: float = 0.01,
            virtual_step: str = "sgd", alpha_first: bool = True):
    del space
    method = hypergradient_method({"name": "unrolled", "hvp": hvp, "eps": eps}, "strategy")
    return BilevelSearch(method, update_rule(optim_alpha, _ADAM), "darts2",
                         schedule=_order(alpha_first), virtual_step=virtual_step)


def _idarts(space, optim_alpha=None, inner_steps: int = 4, neumann_terms: int = 2,
            gamma_scale: float = 1.0, hessian_weight_decay: float = 0.0, linearize: bool = True,
            neumann_loop: bool = False):
    del space
    method = hypergradient_method({"name": "neumann", "terms": neumann_terms,
                                   "gamma_scale": gamma_scale, "linearize": linearize,
                                   "loop": neumann_loop}, "strategy")
    return BilevelSearch(method, update_rule(optim_alpha, _ADAM), "idarts",
                         schedule=Alternating(inner_steps, alpha_first=False),
                         hessian_weight_decay=hessian_weight_decay)


def _amended(space, optim_alpha=None, eta: float = 0.1, hessian_weight_decay: float = 0.0,
             alpha_first: bool = True, linearize: bool = True):
    del space
    method = hypergradient_method({"name": "amended", "eta": eta, "linearize": linearize},
                                  "strategy")
    return BilevelSearch(method, update_rule(optim_alpha, _ADAM), "amended",
                         schedule=_order(alpha_first),
                         hessian_weight_decay=hessian_weight_decay)


def _order(alpha_first) -> Alternating:
    """One weight step per architecture step, the architecture first (DARTS) or second."""
    if not isinstance(alpha_first, bool):
        raise ValueError(f"config.strategy.alpha_first must be True or False, got "
                         f"{alpha_first!r}.")
    return Alternating(1, alpha_first)


STRATEGIES = {"darts": _darts, "darts2": _darts2, "idarts": _idarts, "amended": _amended,
              "constrained": constrained, "balenas": balenas, "randomnas": randomnas,
              "gdas": gdas, "nsas": nsas, "en2as": en2as, "e2nas": e2nas,
              "tnd": tnd, "cadam": cadam,
              "ddas": ddas}


def register_strategy(name: str, factory) -> None:
    """Makes ``factory(space, optim_alpha, **options) -> Strategy`` available as
    ``config.strategy.name = name`` (for strategies written outside jaxnas)."""
    if name in STRATEGIES and STRATEGIES[name] is not factory:
        raise ValueError(f"A strategy named {name!r} is registered already; pick another name.")
    params = list(inspect.signature(factory).parameters)
    if params[:2] != ["space", "optim_alpha"]:
        raise ValueError(f"A strategy factory takes (space, optim_alpha, **options); "
                         f"{factory!r} takes {params}.")
    STRATEGIES[name] = factory


def get_strategy(name: str, space=None, optim_alpha=None, **options):
    """The strategy ``name`` for ``space`` (a search space; the strategies that derive or
    check by it need one), its update rule configured by ``optim_alpha`` (a mapping with a
    ``name``; None: the method's default), and its ``options``. Unknown names, options or
    values raise a ValueError naming the field."""
    if name not in STRATEGIES:
        raise ValueError(f"Unknown strategy {name!r}; known strategies: {', '.join(STRATEGIES)}.")
    known = [p for p in inspect.signature(STRATEGIES[name]).parameters
             if p not in ("space", "optim_alpha")]
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise ValueError(f"Unknown option(s) {unknown} for strategy {name!r}; its options are "
                         f"{known or 'none'}.")
    if space is None and name not in ("darts", "darts2", "idarts", "amended"):
        raise ValueError(f"The {name!r} strategy needs the search space: "
                         "get_strategy(name, space, ...).")
    return STRATEGIES[name](space, optim_alpha, **options)
