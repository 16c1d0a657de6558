"""Progressive shrinking of the candidate operations (P-DARTS; TND-NAS Eq. 11), on the host.

The operations a stage's supernet offers are ``edge_ops``: ``{kind: ((op, ...) per edge)}``,
static tuples of names with the same number on every edge of a kind (its logits are
``[E, K]``). After a stage, each edge drops the ``n`` operations with the lowest probability
``softmax(logits)``; the rest keep their order. The tuples are JSON-able, so a workdir that records
each stage's ``edge_ops`` can rebuild any later stage's supernet. TND-NAS keeps ``none`` to the
end (spec 000, A23): after the last stage each edge holds one operation, and the cell is those
operations with the ``none`` edges removed, any number of inputs per node (``single_op_genotype``).
"""

import numbers
from typing import Mapping, Sequence

import numpy as np

from jaxnas.spaces.genotypes import DARTS_EDGES, DartsGenotype


def op_counts(num_ops: Mapping[str, int], drops: Mapping[str, Sequence[int]],
              to_one: bool = True) -> dict[str, tuple[int, ...]]:
    """The operations per edge of each kind at the start of every stage and after the last:
    ``op_counts({"normal": 10, "reduce": 6}, {"normal": (4, 3, 2), "reduce": (2, 2, 1)})`` is
    ``{"normal": (10, 6, 3, 1), "reduce": (6, 4, 2, 1)}``. A ValueError unless every kind has the
    same number of stages, keeps at least one operation per stage and (``to_one``) ends with
    exactly one."""
    if set(num_ops) != set(drops):
        raise ValueError(f"The cell kinds of the operation counts {sorted(num_ops)} and of the "
                         f"drop counts {sorted(drops)} differ.")
    stages = {kind: len(d) for kind, d in drops.items()}
    if len(set(stages.values())) > 1:
        raise ValueError(f"Every cell kind needs one drop count per stage; got {stages} stages.")
    counts = {}
    for kind in sorted(drops):
        counts[kind] = (num_ops[kind],)
        for stage, n in enumerate(drops[kind]):
            _check_drop(kind, n, counts[kind][-1], f"stage {stage}")
            counts[kind] += (counts[kind][-1] - n,)
        if to_one and counts[kind][-1] != 1:
            raise ValueError(
                f"The {kind} cell's drops {tuple(drops[kind])} take its {num_ops[kind]} "
                f"operations to {counts[kind][-1]} per edge, not 1; the drops of a kind must sum "
                f"to {num_ops[kind] - 1} so that one operation per edge remains.")
    return counts


def shrink(edge_ops: Mapping, logits: Mapping, num_drop: Mapping[str, int]) -> dict:
    """Eq. 11: ``edge_ops`` with the ``num_drop[kind]`` operations of lowest probability removed
    from every edge. ``logits``: ``{kind: [E, K]}`` (softmax is monotone: the lowest logits;
    ties drop the earlier operation first, as repeated argmin does)."""
    kept = {}
    for kind in sorted(edge_ops):
        per_edge = edge_ops[kind]
        scores = np.asarray(logits[kind])
        shape = (len(per_edge), len(per_edge[0]))
        if scores.shape != shape or any(len(ops) != shape[1] for ops in per_edge):
            raise ValueError(f"The {kind} logits have shape {scores.shape}, but its edge_ops hold "
                             f"{[len(ops) for ops in per_edge]} operations on {len(per_edge)} "
                             f"edges; they must be [E, K] with K operations on every edge.")
        n = num_drop[kind]
        _check_drop(kind, n, shape[1], "this stage")
        dropped = np.argsort(scores, axis=1, kind="stable")[:, :n]
        kept[kind] = tuple(tuple(op for k, op in enumerate(ops) if k not in drop)
                           for ops, drop in zip(per_edge, dropped.tolist()))
    return kept


def single_op_genotype(edge_ops: Mapping, edges: Sequence[tuple[int, int]] = DARTS_EDGES,
                       concat: tuple[int, ...] = (2, 3, 4, 5)) -> DartsGenotype:
    """The DARTS genotype of ``edge_ops`` ``{"normal": ..., "reduce": ...}`` holding one operation
    per edge: ``(op, src, dst)`` genes in edge order, ``none`` edges removed."""
    cells = {}
    for kind in ("normal", "reduce"):
        per_edge = edge_ops[kind]
        if len(per_edge) != len(edges) or any(len(ops) != 1 for ops in per_edge):
            raise ValueError(f"A genotype needs exactly one operation on each of the "
                             f"{len(edges)} edges; the {kind} cell has "
                             f"{[len(ops) for ops in per_edge]}. Shrink until one remains.")
        cells[kind] = tuple((ops[0], src, dst) for ops, (src, dst) in zip(per_edge, edges)
                            if ops[0] != "none")
    return DartsGenotype(cells["normal"], concat, cells["reduce"], concat)


def _check_drop(kind, n, available, when):
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or not 0 <= n < available:
        raise ValueError(f"The {kind} cell drops {n!r} operations in {when}, but its edges hold "
                         f"{available}; drop an integer in [0, {available - 1}] so that at least "
                         f"one remains.")
