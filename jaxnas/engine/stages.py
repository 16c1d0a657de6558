"""Staged searches (P-DARTS, TND-NAS): the plan of the stages and what passes between them.

A staged search is a sequence of complete searches, stage ``k`` in ``WORKDIR/stage{k}`` with its
own supernet, fresh weights, architecture state and optimizers (TND-NAS A11), and the candidate
operations of every edge shrunk between stages (``strategies.shrinking``, Eq. 11). It is asked
for by ``config.stages``:

    stages.drop.normal = (4, 3, 2)       # operations each normal edge drops after each stage
    stages.drop.reduce = (2, 2, 1)
    stages.space.layers = (5, 12, 20)    # per-stage values of config.space fields
    stages.strategy.param_target = (...) # per-stage values of config.strategy fields
    stages.final = "single"              # or "derive"

The number of stages is the length of the drop tuples; every per-stage tuple has that length.
``final``: "single", the drops leave one operation per edge and the cell is those operations
with the ``none`` edges removed, any number of inputs per node (TND-NAS); "derive", the last
stage's own derivation (``space.derive``: two inputs per node, P-DARTS). ``epochs`` (and every
other field) is per stage; ``max_steps`` counts the steps of all stages together.

Each stage's directory holds its complete config (``space.edge_ops`` included), so
``load_search(WORKDIR/stage{k})`` rebuilds its supernet from the workdir alone, and, once the
stage is over, ``kept_ops.json``: the operations every edge keeps for the next stage.
"""

import dataclasses
import json
import os

import ml_collections

from jaxnas.distributed import on_chief
from jaxnas.files import write_json
from jaxnas.strategies.shrinking import op_counts, shrink

FINALS = ("single", "derive")
KEPT = "kept_ops.json"


@dataclasses.dataclass(frozen=True)
class StagePlan:
    """``drops``: ``{kind: (n per stage)}``; ``space``, ``strategy``: ``{field: (value per
    stage)}``; ``final``: "single" or "derive"."""

    drops: dict
    space: dict
    strategy: dict
    final: str

    @property
    def count(self) -> int:
        return len(next(iter(self.drops.values())))

    def config(self, config, stage: int, edge_ops: dict | None) -> ml_collections.ConfigDict:
        """The complete one-supernet config of ``stage``: ``config`` without ``stages``, the
        stage's space and strategy values, and ``space.edge_ops`` (None at stage 0: the space's
        own candidates)."""
        out = ml_collections.ConfigDict(config.to_dict())
        del out["stages"]
        for field, values in self.space.items():
            out.space[field] = values[stage]
        for field, values in self.strategy.items():
            out.strategy[field] = values[stage]
        if edge_ops is not None:
            out.space.edge_ops = _as_lists(edge_ops)
        return out


def stage_plan(config) -> StagePlan | None:
    """The plan of ``config.stages``; None when the config has no stages. A ValueError naming
    the field for a plan no search can follow."""
    stages = config.get("stages")
    if not stages or not stages.get("drop"):
        return None
    unknown = sorted(set(stages) - {"drop", "space", "strategy", "final"})
    if unknown:
        raise ValueError(f"config.stages has the unknown field(s) {unknown}; its fields are "
                         "drop, space, strategy and final.")
    drops = {kind: _ints(f"stages.drop.{kind}", values) for kind, values in stages.drop.items()}
    count = len(next(iter(drops.values())))
    per_stage = {}
    for group in ("space", "strategy"):
        values = dict(stages.get(group) or {})
        for field, tuple_ in values.items():
            if not isinstance(tuple_, (tuple, list)) or len(tuple_) != count:
                raise ValueError(f"config.stages.{group}.{field} must hold one value per stage "
                                 f"({count}, as the drop counts), got {tuple_!r}.")
        per_stage[group] = {field: tuple(v) for field, v in values.items()}
    final = stages.get("final", "single")
    if final not in FINALS:
        raise ValueError(f"config.stages.final must be 'single' (one operation per edge at the "
                         f"end, TND-NAS) or 'derive' (the last stage's derivation, P-DARTS), got "
                         f"{final!r}.")
    return StagePlan(drops, per_stage["space"], per_stage["strategy"], final)


def check_shrinking(plan: StagePlan, arch_shapes: dict) -> dict:
    """The operations per edge at every stage, ``{kind: (K_0, ..., K_end)}``, for the first
    stage's ``arch_shapes``; a ValueError for drops that do not fit (or, with ``final``
    "single", do not end with one operation per edge)."""
    if set(plan.drops) != set(arch_shapes):
        raise ValueError(f"config.stages.drop needs the cell kinds {sorted(arch_shapes)}, got "
                         f"{sorted(plan.drops)}.")
    return op_counts({kind: shape[1] for kind, shape in arch_shapes.items()}, plan.drops,
                     to_one=plan.final == "single")


def shrink_stage(plan: StagePlan, stage: int, cell_ops: dict, arch_weights: dict) -> dict:
    """The candidates of the next stage: every edge of ``cell_ops`` without its ``drops`` lowest
    operations by ``arch_weights`` ``{kind: [E, K]}`` (the strategy's mode weights)."""
    return shrink(cell_ops, arch_weights, {kind: d[stage] for kind, d in plan.drops.items()})


def read_kept(stage_dir: str) -> dict | None:
    """The record ``write_kept`` wrote when the stage ended, ``{"kept": {kind: per-edge lists
    of operations}, "steps": int, "genotype": str}``; None while the stage is not over."""
    path = os.path.join(stage_dir, KEPT)
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def write_kept(stage_dir: str, kept: dict, steps: int, genotype) -> dict:
    """Marks the stage over (atomically): the operations each edge keeps, the stage's steps and
    the genotype the stage derived (process 0 writes it). Returns the record, as ``read_kept``
    reads it."""
    record = {"kept": _as_lists(kept), "steps": steps, "genotype": str(genotype)}
    on_chief(write_json, os.path.join(stage_dir, KEPT), record)
    return record


def _as_lists(edge_ops: dict) -> dict:
    """``{kind: per-edge operation tuples}`` as JSON's lists."""
    return {kind: [list(ops) for ops in per_edge] for kind, per_edge in edge_ops.items()}


def _ints(name, values) -> tuple[int, ...]:
    if not isinstance(values, (tuple, list)) or not values:
        raise ValueError(f"config.{name} must be a tuple of drop counts, one per stage, got "
                         f"{values!r}.")
    return tuple(values)
