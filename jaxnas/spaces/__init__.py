"""Search spaces: operations, cells, supernets, discrete networks, genotypes.

A supernet is a pure Flax linen module called as ``net.apply(variables, x, arch_weights,
train=...)``, where ``arch_weights`` are per-edge operation weights after the strategy's
activation: ``{"cell": [6, K]}`` for NAS-Bench-201, ``{"normal": [E, K], "reduce": [E, K]}`` for
the DARTS space.
"""

from jaxnas.spaces.darts import darts_network, darts_supernet
from jaxnas.spaces.genotypes import (DARTS_EDGES, NB201_EDGES, DartsGenotype, NB201Genotype,
                                     derive_darts_cell, derive_nb201, genotype_from_dict,
                                     load_genotype, save_genotype)
from jaxnas.spaces.inherit import inherit_variables
from jaxnas.spaces.init import init_variables
from jaxnas.spaces.nb201 import nb201_network, nb201_supernet
from jaxnas.spaces.ops import DARTS_OPS, NB201_OPS
from jaxnas.spaces.published import PUBLISHED
from jaxnas.spaces.space import DartsSpace, NB201Space, get_space
