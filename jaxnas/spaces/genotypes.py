"""Genotypes: the discrete architectures a search returns, their derivation and their formats.

Two formats, both stored as JSON with a ``"space"`` key:

- NAS-Bench-201: one operation per edge of the 4-node cell, written as the arch string
  ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|`` (edge order ``(1<-0), (2<-0), (2<-1), (3<-0), (3<-1),
  (3<-2)``).
- DARTS: ``Genotype(normal=[(op, input), ...], normal_concat=[2, 3, 4, 5], reduce=...,
  reduce_concat=...)`` as in the original DARTS code: two ``(op, input)`` pairs per intermediate node
  in node order. Cells with a variable number of inputs per node (TND-NAS) use ``(op, input, node)``
  triples instead.
"""

import ast
import dataclasses
import json
import os
import re
from typing import Sequence

import numpy as np

from jaxnas.files import write_json
from jaxnas.spaces.ops import DARTS_OPS, NB201_OPS, check_op_names

# (src, dst) of the NB201 cell's edges, in arch-string order.
NB201_EDGES = ((0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3))
NB201_ARCH_FORMAT = "|op~0|+|op~0|op~1|+|op~0|op~1|op~2|"
# (src, dst) of the DARTS cell's 14 edges: node 2 <- {0, 1}, node 3 <- {0, 1, 2}, ...
DARTS_EDGES = tuple((src, dst) for dst in range(2, 6) for src in range(dst))
# The fields of a DARTS genotype, in Genotype(...) order.
DARTS_FIELDS = ("normal", "normal_concat", "reduce", "reduce_concat")


@dataclasses.dataclass(frozen=True)
class NB201Genotype:
    """One operation per NB201 edge, in ``NB201_EDGES`` order."""

    ops: tuple[str, ...]

    def __post_init__(self):
        if len(self.ops) != len(NB201_EDGES):
            raise ValueError(
                f"An NB201 genotype has {len(NB201_EDGES)} operations (one per edge), "
                f"got {len(self.ops)}: {self.ops}.")
        object.__setattr__(self, "ops", tuple(self.ops))
        for op in self.ops:
            if op not in NB201_OPS:
                raise ValueError(
                    f"Unknown NB201 operation {op!r}; the NB201 operations are {NB201_OPS}.")

    space = "nb201"

    @property
    def arch_str(self) -> str:
        nodes = []
        for dst in (1, 2, 3):
            nodes.append("|" + "|".join(
                f"{op}~{src}" for op, (src, d) in zip(self.ops, NB201_EDGES) if d == dst) + "|")
        return "+".join(nodes)

    @classmethod
    def from_arch_str(cls, arch_str: str) -> "NB201Genotype":
        """Parses ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|``; a malformed string raises a
        ValueError that names the problem."""
        ops, problem = [], None
        nodes = arch_str.split("+")
        if len(nodes) != 3:
            problem = f"expected 3 nodes separated by '+', found {len(nodes)}"
        for dst, node in enumerate(nodes if problem is None else (), start=1):
            genes = node[1:-1].split("|")
            if len(node) < 2 or node[0] != "|" or node[-1] != "|":
                problem = f"node {dst} ({node!r}) must start and end with '|'"
            elif len(genes) != dst:
                problem = f"node {dst} must have {dst} incoming edge(s), found {len(genes)}"
            for src, gene in enumerate(genes if problem is None else ()):
                op, sep, index = gene.partition("~")
                if not sep:
                    problem = f"edge {gene!r} of node {dst} must be written op~input"
                elif op not in NB201_OPS:
                    problem = f"unknown op {op!r} on node {dst}"
                elif index != str(src):
                    problem = (f"edge {gene!r} of node {dst} must come from node {src} (edges "
                               f"are listed in input order 0..{dst - 1})")
                if problem:
                    break
                ops.append(op)
            if problem:
                break
        if problem:
            raise ValueError(f"Malformed NB201 arch string {arch_str!r}: {problem}. Expected the "
                             f"form {NB201_ARCH_FORMAT!r} with op in {NB201_OPS}.")
        return cls(tuple(ops))

    def to_dict(self) -> dict:
        return {"space": self.space, "arch_str": self.arch_str, "ops": list(self.ops)}

    def __str__(self):
        return self.arch_str


Gene = tuple  # (op, input) or (op, input, node)


@dataclasses.dataclass(frozen=True)
class DartsGenotype:
    """A DARTS-space genotype: the normal and reduction cells, as in the original DARTS code."""

    normal: tuple[Gene, ...]
    normal_concat: tuple[int, ...]
    reduce: tuple[Gene, ...]
    reduce_concat: tuple[int, ...]

    space = "darts"

    def __post_init__(self):
        for field in ("normal", "reduce"):
            genes = tuple(tuple(g) for g in getattr(self, field))
            object.__setattr__(self, field, genes)
            _edges_of(genes, field)  # validates
        for field in ("normal_concat", "reduce_concat"):
            object.__setattr__(self, field, tuple(int(i) for i in getattr(self, field)))

    def edges(self, cell: str) -> tuple[tuple[str, int, int], ...]:
        """``(op, src, dst)`` of every gene of ``cell`` ("normal" or "reduce")."""
        if cell not in ("normal", "reduce"):
            raise ValueError(f"cell must be 'normal' or 'reduce', got {cell!r}.")
        return _edges_of(getattr(self, cell), cell)

    def to_dict(self) -> dict:
        return {
            "space": self.space,
            "normal": [list(g) for g in self.normal],
            "normal_concat": list(self.normal_concat),
            "reduce": [list(g) for g in self.reduce],
            "reduce_concat": list(self.reduce_concat),
        }

    def __str__(self):
        return (f"Genotype(normal={[g for g in self.normal]}, "
                f"normal_concat={list(self.normal_concat)}, "
                f"reduce={[g for g in self.reduce]}, reduce_concat={list(self.reduce_concat)})")

    @classmethod
    def from_string(cls, text: str) -> "DartsGenotype":
        """Parses the ``Genotype(normal=[...], ...)`` text printed by the original DARTS code."""
        match = re.fullmatch(r"\s*(?:\w+\.)?Genotype\((.*)\)\s*", text, flags=re.S)
        if not match:
            raise ValueError(f"Not a DARTS Genotype(...) string: {text[:80]!r}.")
        text = re.sub(r"range\((\d+),\s*(\d+)\)",
                      lambda m: str(list(range(int(m[1]), int(m[2])))), match[1])
        try:
            fields = _parse_kwargs(text)
        except (ValueError, SyntaxError) as e:
            raise ValueError(f"Cannot parse the DARTS genotype {text[:80]!r}: {e}") from None
        unknown = [name for name in fields if name not in DARTS_FIELDS]
        if unknown:
            raise ValueError(
                f"The DARTS genotype {text[:80]!r} has unknown field(s) {unknown}; the fields "
                f"are {', '.join(DARTS_FIELDS)}.")
        return cls(*_darts_fields(fields))


def _parse_kwargs(text: str) -> dict:
    """The keyword arguments of ``f(<text>)``, as Python literals."""
    call = ast.parse(f"f({text})", mode="eval").body
    if not isinstance(call, ast.Call):
        raise ValueError("the text is not one Genotype(...) call")
    if call.args or any(kw.arg is None for kw in call.keywords):
        raise ValueError(
            f"{len(call.args)} positional or unpacked argument(s); write it with the keyword "
            f"fields {', '.join(f'{name}=' for name in DARTS_FIELDS)} as the DARTS code prints "
            f"it, e.g. Genotype(normal=[('sep_conv_3x3', 0), ...], normal_concat=[2, 3, 4, 5], "
            f"reduce=[...], reduce_concat=[2, 3, 4, 5])")
    return {kw.arg: ast.literal_eval(kw.value) for kw in call.keywords}


def _darts_fields(data: dict) -> tuple:
    """The values of ``DARTS_FIELDS`` in ``data``; a missing one raises a ValueError."""
    missing = [name for name in DARTS_FIELDS if name not in data]
    if missing:
        raise ValueError(f"The DARTS genotype lacks the field(s) {missing}; a DARTS genotype has "
                         f"{', '.join(DARTS_FIELDS)}.")
    return tuple(data[name] for name in DARTS_FIELDS)


def _edges_of(genes: Sequence[Gene], cell: str) -> tuple[tuple[str, int, int], ...]:
    edges = []
    for i, gene in enumerate(genes):
        if len(gene) == 2:
            op, src = gene
            dst = 2 + i // 2
        elif len(gene) == 3:
            op, src, dst = gene
        else:
            raise ValueError(
                f"Gene {gene!r} of the {cell} cell must be (op, input) or (op, input, node).")
        check_op_names([op])
        if not 0 <= int(src) < int(dst):
            raise ValueError(
                f"Gene {gene!r} of the {cell} cell reads from node {src}, which is not an "
                f"earlier node of node {dst}.")
        edges.append((op, int(src), int(dst)))
    return tuple(edges)


Genotype = NB201Genotype | DartsGenotype


def genotype_from_dict(data: dict) -> Genotype:
    """Inverse of ``to_dict``; accepts the ``genotype.json`` files written by searches."""
    if not isinstance(data, dict):
        raise ValueError(
            f"A genotype is a JSON object with a \"space\" key ('nb201' or 'darts') and that "
            f"space's fields, as a search writes genotype.json; got {type(data).__name__} "
            f"{repr(data)[:80]}.")
    space = data.get("space")
    if space == "nb201":
        if "arch_str" in data:
            return NB201Genotype.from_arch_str(data["arch_str"])
        if "ops" in data:
            return NB201Genotype(tuple(data["ops"]))
        raise ValueError("The NB201 genotype has neither an \"arch_str\" nor an \"ops\" field.")
    if space == "darts":
        return DartsGenotype(*_darts_fields(data))
    raise ValueError(f"Unknown genotype space {space!r}; expected 'nb201' or 'darts'.")


def save_genotype(genotype: Genotype, path: str | os.PathLike, **extra) -> None:
    """Writes ``genotype`` (and any JSON-able ``extra`` fields) as JSON, atomically."""
    write_json(path, {**genotype.to_dict(), **extra})


def load_genotype(path_or_name: str | os.PathLike) -> Genotype:
    """Reads a genotype JSON file, an NB201 arch string, a DARTS ``Genotype(...)`` string, or
    the name of a published genotype (see ``jaxnas.spaces.published``)."""
    from jaxnas.spaces.published import PUBLISHED

    text = str(path_or_name)
    if text in PUBLISHED:
        return PUBLISHED[text]
    if text.startswith("|"):
        return NB201Genotype.from_arch_str(text)
    if "Genotype(" in text:
        return DartsGenotype.from_string(text)
    if not os.path.exists(text):
        raise FileNotFoundError(
            f"No genotype file {text!r}, and it is not a published genotype name "
            f"({', '.join(sorted(PUBLISHED))}), an NB201 arch string or a Genotype(...) string.")
    with open(text, encoding="utf-8") as f:
        try:
            data = json.load(f)
        except json.JSONDecodeError as e:
            raise ValueError(f"Genotype file {text!r} is not valid JSON: {e}.") from None
    try:
        return genotype_from_dict(data)
    except ValueError as e:
        raise ValueError(f"Genotype file {text!r}: {e}") from None


def derive_nb201(weights: np.ndarray, ops: Sequence[str] = NB201_OPS) -> NB201Genotype:
    """The argmax operation of every edge. ``weights``: [6, len(ops)] (after activation)."""
    weights = np.asarray(weights)
    if weights.shape != (len(NB201_EDGES), len(ops)):
        raise ValueError(f"NB201 weights must have shape {(len(NB201_EDGES), len(ops))}, "
                         f"got {weights.shape}.")
    return NB201Genotype(tuple(ops[i] for i in weights.argmax(axis=-1)))


def derive_darts_cell(weights: np.ndarray, ops: Sequence[str] | Sequence[Sequence[str]] = DARTS_OPS,
                      edges: Sequence[tuple[int, int]] = DARTS_EDGES,
                      inputs_per_node: int | None = 2) -> tuple[Gene, ...]:
    """DARTS's discretization of one cell.

    ``weights``: [len(edges), K] per-edge operation weights (after activation); ``ops``: the K
    operation names of every edge, or one tuple of K names per edge (a shrunk stage's cell).
    Each edge keeps its strongest operation other than ``none``; each node keeps its
    ``inputs_per_node`` edges whose kept operation is strongest (all edges when None, as for
    fixed-edge cells); an edge left with ``none`` alone is never kept. Returns ``(op, input)``
    pairs in node order when every node keeps two edges, else ``(op, input, node)`` triples.
    """
    weights = np.asarray(weights)
    per_edge = _per_edge_ops(ops, len(edges))
    if weights.shape != (len(edges), len(per_edge[0])):
        raise ValueError(f"DARTS cell weights must have shape {(len(edges), len(per_edge[0]))}, "
                         f"got {weights.shape}.")
    best_op = []
    for w, names in zip(weights, per_edge):
        candidates = [i for i, op in enumerate(names) if op != "none"]
        best_op.append(candidates[int(np.argmax(w[candidates]))] if candidates else None)
    if all(k is None for k in best_op):
        raise ValueError(f"Cannot derive a DARTS cell from operations {tuple(ops)}: all are 'none'.")
    genes = []
    for dst in sorted({d for _, d in edges}):
        incoming = [e for e, (_, d) in enumerate(edges) if d == dst and best_op[e] is not None]
        # Stable sort by decreasing strength: ties keep edge order, as in DARTS.
        kept = sorted(incoming, key=lambda e: -weights[e, best_op[e]])[:inputs_per_node]
        genes.extend((per_edge[e][best_op[e]], edges[e][0], dst) for e in kept)
    if all(dst == 2 + i // 2 for i, (_, _, dst) in enumerate(genes)):
        return tuple(gene[:2] for gene in genes)
    return tuple(genes)


def _per_edge_ops(ops, num_edges: int) -> tuple[tuple[str, ...], ...]:
    """``ops`` (K names, or one tuple of K names per edge) as one tuple per edge."""
    if ops and not isinstance(ops[0], str):
        per_edge = tuple(tuple(names) for names in ops)
        if len(per_edge) != num_edges or len({len(names) for names in per_edge}) != 1:
            raise ValueError(f"Per-edge operations need one tuple of the same length per edge "
                             f"({num_edges} edges); got lengths {[len(n) for n in per_edge]}.")
        return per_edge
    return (tuple(ops),) * num_edges
