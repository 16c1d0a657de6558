"""Update rules for architecture parameters, as optax transformations.

Each is an optax ``GradientTransformationExtraArgs`` and composes with ``optax.chain``, e.g. a
constrained-DARTS rule ``chain(admm(project, activation), prune_nonpositive(adam(3e-4)))``. Extra
arguments a rule may read: ``progress`` (the fraction of the planned search done, in [0, 1]) and
``curvature`` (a diagonal curvature estimate shaped like the parameters). A rule's state that has
a ``metrics`` field (a dict of scalars) is reported by the search (``collect_metrics``).

Pure JAX and optax on pytrees; knows nothing of NAS beyond the callables it is given.
"""

from jaxnas.transforms.admm import ADMMState, admm
from jaxnas.transforms.penalty import PenaltyState, penalty, safe_norm
from jaxnas.transforms.pruning import PruneState, prune_nonpositive
from jaxnas.transforms.state import collect_metrics
from jaxnas.transforms.vadam import VADAM_FORMS, VadamState, vadam

__all__ = [
    "admm", "ADMMState", "penalty", "PenaltyState", "safe_norm", "prune_nonpositive",
    "PruneState", "collect_metrics", "vadam", "VadamState", "VADAM_FORMS",
]
