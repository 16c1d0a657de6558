"""Search spaces as objects: a supernet, the shapes of its architecture weights, the derivation
of a genotype from those weights, and the discrete network of a genotype.

``get_space(name, **options)`` builds one from a config (``config.space``).
"""

import dataclasses

import jax
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
    a non-affine batch norm after each node's sum in the supernet (constrained DARTS's CRB);
    ``scan`` runs each stage's cells as one ``lax.scan`` (compiled once; the same parameters and
    values); None: when a stage has more than one cell, except in the CPU's mixed supernet,
    whose unrolled step runs faster (the single-path one runs faster scanned). ``remat``
    recomputes a supernet cell's activations in the backward pass instead of storing them; None:
    in scanned stages on the CPU, whose steps are bound by memory traffic, and not on
    accelerators (``BENCHMARKS.md``)."""

    C: int = 16
    N: int = 5
    ops: tuple[str, ...] = NB201_OPS
    node_bn: bool = False
    remat: bool | None = None
    scan: bool | None = None

    name = "nb201"

    def __post_init__(self):
        _check_positive("space.C", self.C)
        _check_positive("space.N", self.N)
        check_op_names(self.ops)

    def arch_shapes(self) -> dict[str, tuple[int, int]]:
        return {"cell": (len(NB201_EDGES), len(self.ops))}

    def cell_ops(self) -> dict[str, tuple[tuple[str, ...], ...]]:
        """``{"cell": ((op, ...) per edge)}``: ``ops`` on every edge."""
        return {"cell": (tuple(self.ops),) * len(NB201_EDGES)}

    def supernet(self, num_classes: int, drop_path: bool = False, single_path: bool = False):
        """The supernet; ``single_path``: each edge computes only its chosen operation."""
        if drop_path:
            raise ValueError("The NAS-Bench-201 supernet has no drop-path; set "
                             "config.drop_path=0.")
        cpu = jax.default_backend() == "cpu"
        scan = self.N > 1 and (single_path or not cpu) if self.scan is None else self.scan
        remat = (scan and cpu) if self.remat is None else self.remat
        return nb201.nb201_supernet(self.C, self.N, num_classes, self.ops, node_bn=self.node_bn,
                                    single_path=single_path, remat=remat, scan=scan)

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
    CRB).

    The candidates: ``ops`` on every edge, or on the normal cell's edges when ``reduce_ops``
    names the reduction cell's (TND-NAS); ``edge_ops`` ``{kind: ((op, ...) per edge)}``, the
    same number on every edge of a kind, gives each edge its own (a shrunk stage of a staged
    search) and overrides both. ``cell_ops()`` is what the supernet holds; paths and
    architecture weights index each edge's own tuple. ``scan`` runs a supernet cell's edges of
    each stride as one ``lax.scan`` (``jaxnas.spaces.scan_edges``: compiled once; the same
    parameters and values), for uniform candidates without ``node_bn``, drop-path or single
    path; None: wherever it can. ``remat`` recomputes activations in the backward pass instead
    of storing them: each edge's in a scanned cell, each cell's otherwise; None: in scanned
    cells, where on the CPU it took 12 times less memory and less time (``BENCHMARKS.md``)."""

    C: int = 16
    layers: int = 8
    ops: tuple[str, ...] = DARTS_OPS
    edges: str = "all"
    auxiliary: bool = False
    node_bn: bool = False
    reduce_ops: tuple[str, ...] = ()
    edge_ops: tuple = ()  # (("normal", per-edge tuples), ("reduce", ...)); a mapping is accepted
    remat: bool | None = None
    scan: bool | None = None

    name = "darts"

    def __post_init__(self):
        _check_positive("space.C", self.C)
        if self.layers < 3:
            raise ValueError(f"space.layers must be >= 3 (reduction cells sit at 1/3 and 2/3 of "
                             f"the depth), got {self.layers}.")
        if self.edges not in ("all", "fixed"):
            raise ValueError(f"space.edges must be 'all' or 'fixed', got {self.edges!r}.")
        check_op_names(self.ops)
        object.__setattr__(self, "reduce_ops", tuple(self.reduce_ops))
        check_op_names(self.reduce_ops)
        object.__setattr__(self, "edge_ops", _frozen_edge_ops(self.edge_ops, len(self.edge_list)))

    @property
    def edge_list(self) -> tuple[tuple[int, int], ...]:
        return DARTS_EDGES if self.edges == "all" else FIXED_EDGES

    @property
    def uniform(self) -> bool:
        """Whether every edge of both cells holds ``ops`` (no ``reduce_ops`` or ``edge_ops``)."""
        return not (self.reduce_ops or self.edge_ops)

    def cell_ops(self) -> dict[str, tuple[tuple[str, ...], ...]]:
        """``{kind: ((op, ...) per edge)}``: the candidates of every edge of each cell kind."""
        if self.edge_ops:
            return dict(self.edge_ops)
        num = len(self.edge_list)
        return {"normal": (tuple(self.ops),) * num,
                "reduce": (tuple(self.reduce_ops or self.ops),) * num}

    def arch_shapes(self) -> dict[str, tuple[int, int]]:
        return {kind: (len(per_edge), len(per_edge[0]))
                for kind, per_edge in self.cell_ops().items()}

    def supernet(self, num_classes: int, drop_path: bool = False, single_path: bool = False):
        """The supernet; ``drop_path``: with drop-path on every operation but the identity
        (called with ``drop_path_rate`` and a ``"dropout"`` rng); ``single_path``: each edge
        computes only its chosen operation."""
        scannable = self.uniform and not (self.node_bn or drop_path or single_path)
        if self.scan and not scannable:
            raise ValueError("space.scan=True needs the same candidates on every edge (no "
                             "space.reduce_ops or space.edge_ops), no space.node_bn, no drop-path "
                             "and no single-path strategy; set space.scan=False or leave it "
                             "unset.")
        scan = scannable if self.scan is None else self.scan
        remat = scan if self.remat is None else self.remat
        return darts.darts_supernet(self.C, self.layers, num_classes, self.ops, self.edge_list,
                                    self.auxiliary, self.node_bn, drop_path, single_path,
                                    None if self.uniform else self.cell_ops(), remat, scan)

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
        cell_ops = self.cell_ops()
        cells = {kind: derive_darts_cell(np.asarray(arch_weights[kind]), cell_ops[kind],
                                         self.edge_list, self.inputs_per_node)
                 for kind in ("normal", "reduce")}
        concat = (2, 3, 4, 5)
        return DartsGenotype(cells["normal"], concat, cells["reduce"], concat)

    def project(self, arch_weights: dict) -> dict:
        """Pi_S: per node the two strongest edges from distinct sources, one operation other
        than ``none`` each (all edges of the fixed-edge cell); jit-able."""
        return {kind: project_cell(arch_weights[kind], self.edge_list,
                                   np.array([_allowed(names) for names in per_edge]),
                                   self.inputs_per_node)
                for kind, per_edge in self.cell_ops().items()}

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


def _frozen_edge_ops(edge_ops, num_edges: int) -> tuple:
    """``edge_ops`` (a mapping or pairs ``{kind: per-edge op lists}``, or empty) as sorted,
    hashable ``((kind, ((op, ...), ...)), ...)``; a ValueError unless both cell kinds give
    ``num_edges`` known, non-empty tuples of one length."""
    if not edge_ops:
        return ()
    pairs = dict(edge_ops.items() if hasattr(edge_ops, "items") else edge_ops)
    if set(pairs) != {"normal", "reduce"}:
        raise ValueError(f"space.edge_ops needs the cell kinds 'normal' and 'reduce', got "
                         f"{sorted(pairs)}.")
    frozen = []
    for kind in ("normal", "reduce"):
        per_edge = tuple(tuple(names) for names in pairs[kind])
        lengths = [len(names) for names in per_edge]
        if len(per_edge) != num_edges or len(set(lengths)) != 1 or not lengths[0]:
            raise ValueError(f"space.edge_ops[{kind!r}] needs {num_edges} edges holding the same "
                             f"number (>= 1) of operations, got {len(per_edge)} edges holding "
                             f"{lengths}.")
        for names in per_edge:
            check_op_names(names)
        frozen.append((kind, per_edge))
    return tuple(frozen)


def _allowed(ops) -> tuple[bool, ...]:
    return tuple(op != "none" for op in ops)


def _check_positive(name, value):
    if not isinstance(value, int) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}.")
