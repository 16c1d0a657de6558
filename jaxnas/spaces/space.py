"""Search spaces as objects: a supernet, the shapes of its architecture weights, the derivation
of a genotype from those weights, and the discrete network of a genotype.

``get_space(name, **options)`` builds one from a config (``config.space``).
"""

import dataclasses

import numpy as np

from jaxnas.spaces import darts, nb201
from jaxnas.spaces.genotypes import (DARTS_EDGES, NB201_EDGES, DartsGenotype, NB201Genotype,
                                     derive_darts_cell, derive_nb201)
from jaxnas.spaces.ops import DARTS_OPS, NB201_OPS, check_op_names
from jaxnas.spaces.projection import project_cell

# Amended-DARTS's fixed-edge cell: node i reads from node i-1 and from the cell input c_{k-2}.
FIXED_EDGES = ((1, 2), (0, 2), (2, 3), (0, 3), (3, 4), (0, 4), (4, 5), (0, 5))


@dataclasses.dataclass(frozen=True)
class NB201Space:
    """NAS-Bench-201: ``N`` cells per stage, ``C`` channels in the first stage; ``node_bn`` adds
    a non-affine batch norm after each node's sum in the supernet (constrained DARTS's CRB)."""

    C: int = 16
    N: int = 5
    ops: tuple[str, ...] = NB201_OPS
    node_bn: bool = False

    name = "nb201"

    def __post_init__(self):
        _check_positive("space.C", self.C)
        _check_positive("space.N", self.N)
        check_op_names(self.ops)

    def arch_shapes(self) -> dict[str, tuple[int, int]]:
        return {"cell": (len(NB201_EDGES), len(self.ops))}

    def supernet(self, num_classes: int, drop_path: bool = False, single_path: bool = False):
        """The supernet; ``single_path``: each edge computes only its chosen operation."""
        if drop_path:
            raise ValueError("The NAS-Bench-201 supernet has no drop-path; set "
                             "config.drop_path=0.")
        return nb201.nb201_supernet(self.C, self.N, num_classes, self.ops, node_bn=self.node_bn,
                                    single_path=single_path)

    def cell_kind(self, module: str) -> str | None:
        """The architecture key of the supernet's top-level module ``module`` when it is a cell
        (``stage{s}_cell{i}``), else None."""
        return "cell" if module.startswith("stage") else None

    @property
    def edge_list(self) -> tuple[tuple[int, int], ...]:
        return NB201_EDGES

    def derive(self, arch_weights: dict) -> NB201Genotype:
        return derive_nb201(np.asarray(arch_weights["cell"]), self.ops)

    def project(self, arch_weights: dict) -> dict:
        """Pi_S: one operation other than ``none`` per edge (jit-able)."""
        return {"cell": project_cell(arch_weights["cell"], NB201_EDGES, _allowed(self.ops),
                                     keep=None)}

    def network(self, genotype: NB201Genotype, num_classes: int, **options):
        return nb201.nb201_network(genotype, options.pop("C", self.C), options.pop("N", self.N),
                                   num_classes, **options)


@dataclasses.dataclass(frozen=True)
class DartsSpace:
    """The DARTS CNN space: ``layers`` cells, ``C`` initial channels; ``edges`` "all" (14 per
    cell, two kept per node) or "fixed" (Amended-DARTS's 8 fixed edges, all kept); ``node_bn``
    adds a non-affine batch norm after each node's sum in the supernet (constrained DARTS's
    CRB)."""

    C: int = 16
    layers: int = 8
    ops: tuple[str, ...] = DARTS_OPS
    edges: str = "all"
    auxiliary: bool = False
    node_bn: bool = False

    name = "darts"

    def __post_init__(self):
        _check_positive("space.C", self.C)
        if self.layers < 3:
            raise ValueError(f"space.layers must be >= 3 (reduction cells sit at 1/3 and 2/3 of "
                             f"the depth), got {self.layers}.")
        if self.edges not in ("all", "fixed"):
            raise ValueError(f"space.edges must be 'all' or 'fixed', got {self.edges!r}.")
        check_op_names(self.ops)

    @property
    def edge_list(self) -> tuple[tuple[int, int], ...]:
        return DARTS_EDGES if self.edges == "all" else FIXED_EDGES

    def arch_shapes(self) -> dict[str, tuple[int, int]]:
        shape = (len(self.edge_list), len(self.ops))
        return {"normal": shape, "reduce": shape}

    def supernet(self, num_classes: int, drop_path: bool = False, single_path: bool = False):
        """The supernet; ``drop_path``: with drop-path on every operation but the identity
        (called with ``drop_path_rate`` and a ``"dropout"`` rng); ``single_path``: each edge
        computes only its chosen operation."""
        return darts.darts_supernet(self.C, self.layers, num_classes, self.ops, self.edge_list,
                                    self.auxiliary, self.node_bn, drop_path, single_path)

    def cell_kind(self, module: str) -> str | None:
        """The architecture key ("normal" or "reduce") of the supernet's top-level module
        ``module`` when it is a cell (``cell{i}``), else None."""
        if not (module.startswith("cell") and module[4:].isdigit()):
            return None
        return "reduce" if int(module[4:]) in darts.reduction_layers(self.layers) else "normal"

    @property
    def inputs_per_node(self) -> int | None:
        """Edges a derived node keeps: 2, or None (all) for the fixed-edge cell."""
        return 2 if self.edges == "all" else None

    def derive(self, arch_weights: dict) -> DartsGenotype:
        cells = {kind: derive_darts_cell(np.asarray(arch_weights[kind]), self.ops,
                                         self.edge_list, self.inputs_per_node)
                 for kind in ("normal", "reduce")}
        concat = (2, 3, 4, 5)
        return DartsGenotype(cells["normal"], concat, cells["reduce"], concat)

    def project(self, arch_weights: dict) -> dict:
        """Pi_S: per node the two strongest edges from distinct sources, one operation other
        than ``none`` each (all edges of the fixed-edge cell); jit-able."""
        return {kind: project_cell(arch_weights[kind], self.edge_list, _allowed(self.ops),
                                   self.inputs_per_node)
                for kind in ("normal", "reduce")}

    def network(self, genotype: DartsGenotype, num_classes: int, **options):
        return darts.darts_network(genotype, options.pop("C", self.C),
                                   options.pop("layers", self.layers), num_classes, **options)


SPACES = {"nb201": NB201Space, "darts": DartsSpace}


def get_space(name: str, **options):
    """The search space ``name`` ("nb201" or "darts") with the given options."""
    if name not in SPACES:
        raise ValueError(f"Unknown search space {name!r}; known spaces: {', '.join(SPACES)}.")
    fields = {f.name for f in dataclasses.fields(SPACES[name])}
    unknown = sorted(set(options) - fields)
    if unknown:
        raise ValueError(f"Unknown option(s) {unknown} for the {name} space; its options are "
                         f"{sorted(fields)}.")
    if "ops" in options:
        options["ops"] = tuple(options["ops"])
    return SPACES[name](**options)


def _allowed(ops) -> tuple[bool, ...]:
    return tuple(op != "none" for op in ops)


def _check_positive(name, value):
    if not isinstance(value, int) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}.")
