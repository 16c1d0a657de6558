"""Shape metrics of derived cells: depth, depth connections (Zhang thesis Eq 4.13) and skips.

DARTS cells are given as the `normal` (or `reduce`) list of a DARTS genotype, in either form:

- pairs `(op, input)`, two per intermediate node in order: pairs 0-1 feed node 2, pairs 2-3
  node 3, pairs 4-5 node 4, pairs 6-7 node 5 (the DARTS format);
- triples `(op, input, node)`, any number of inputs per node (TND-NAS cells).

Nodes 0 and 1 are the cell inputs c_{k-2} and c_{k-1}; node j >= 2 is intermediate node j, and
the cell output concatenates the intermediate nodes. An edge whose op is `none` computes zero and
is not a connection. NAS-Bench-201 cells (arch strings) have their own functions, prefixed nb201_.
"""

from __future__ import annotations

import operator
from typing import Any, Iterable, Sequence

from jaxnas.benchmarks.nb201 import parse_arch_str
from jaxnas.spaces.genotypes import NB201_EDGES

NONE = "none"
SKIP = "skip_connect"


def _edges(cell: Sequence[Sequence[Any]]) -> list[tuple[str, int, int]]:
    """The edges of a DARTS cell as (op, input, node), validated."""
    entries = list(cell)
    if not entries:
        raise ValueError("the cell is empty; expected a list of (op, input) pairs or "
                         "(op, input, node) triples")
    sizes = {len(e) if isinstance(e, (tuple, list)) else None for e in entries}
    if sizes == {2}:
        if len(entries) % 2:
            raise ValueError(f"a DARTS cell of (op, input) pairs has 2 pairs per intermediate "
                             f"node, got {len(entries)} pairs; use (op, input, node) triples for "
                             f"other numbers of inputs")
        triples = [(op, source, 2 + k // 2) for k, (op, source) in enumerate(entries)]
    elif sizes == {3}:
        triples = [tuple(e) for e in entries]
    else:
        raise ValueError(f"cell entries must all be (op, input) pairs or all (op, input, node) "
                         f"triples, got {entries!r}")
    edges = []
    for op, source, node in triples:
        try:
            source, node = operator.index(source), operator.index(node)
        except TypeError:
            raise ValueError(f"edge {(op, source, node)!r}: input and node must be integers") \
                from None
        if not isinstance(op, str):
            raise ValueError(f"edge {(op, source, node)!r}: the op must be a string")
        if node < 2 or not 0 <= source < node:
            raise ValueError(f"edge {(op, source, node)!r}: needs node >= 2 and "
                             f"0 <= input < node (inputs 0, 1 are the cell inputs)")
        edges.append((op, source, node))
    return edges


def _longest_paths(connections: Iterable[tuple[int, int]],
                   sources: Iterable[int]) -> dict[int, int]:
    """Longest path, in edges, from any source to each reachable node of a DAG.

    Args:
      connections: (input, node) pairs with input < node.
      sources: the nodes at depth 0.
    """
    depth = {source: 0 for source in sources}
    for source, node in sorted(connections, key=operator.itemgetter(1)):
        if source in depth:
            depth[node] = max(depth.get(node, 0), depth[source] + 1)
    return depth


def l0_depth(cell: Sequence[Sequence[Any]]) -> int:
    """The depth count of Eq 4.13 / 5.19 of the Zhang thesis: connections joining node i and i-1.

    l0_depth = sum_j d(c_j), with d(c_j) = 1 iff connection c_j feeds intermediate node i from
    intermediate node i-1, i.e. the edges (2->3), (3->4), (4->5) of a DARTS cell: 0 to 3.
    Reading of the thesis: the edge from the cell input c_{k-1} (node 1) to node 2 does not
    count, since every DARTS cell has it (node 2 has no other inputs to choose from) and it adds
    no depth; a `none` edge is not a connection and does not count.
    """
    return sum(1 for op, source, node in _edges(cell)
               if op != NONE and source >= 2 and source == node - 1)


def cell_depth(cell: Sequence[Sequence[Any]]) -> int:
    """Number of op edges on the longest path from a cell input to the cell output.

    `none` edges are ignored and the output concatenation adds no edge, so a cell whose
    intermediate nodes all read the cell inputs has depth 1, and the chain 1 -> 2 -> 3 -> 4 -> 5
    depth 4. A cell where every edge is `none` has depth 0.
    """
    edges = _edges(cell)
    depth = _longest_paths(((s, n) for op, s, n in edges if op != NONE), sources=(0, 1))
    return max((d for node, d in depth.items() if node >= 2), default=0)


def skip_count(cell: Sequence[Sequence[Any]]) -> int:
    """Number of `skip_connect` edges in a DARTS cell."""
    return sum(1 for op, _, _ in _edges(cell) if op == SKIP)


def skip_ratio(cell: Sequence[Sequence[Any]]) -> float:
    """Fraction of the cell's ops (its edges that are not `none`; 8 in a DARTS cell) that are
    `skip_connect`, as in Fig 5.5 of the Zhang thesis."""
    ops = [op for op, _, _ in _edges(cell) if op != NONE]
    if not ops:
        raise ValueError("every edge of the cell is `none`: the skip ratio is undefined")
    return sum(1 for op in ops if op == SKIP) / len(ops)


def nb201_skip_count(arch: Any) -> int:
    """Number of `skip_connect` edges (of 6) in an NB201 arch string or genotype."""
    return parse_arch_str(arch).count(SKIP)


def nb201_depth(arch: Any) -> int:
    """Number of op edges on the longest path from the input node 0 to the output node 3 of an
    NB201 cell, ignoring `none` edges: 1 to 3, or 0 when no path reaches the output (the cell
    outputs zeros)."""
    ops = parse_arch_str(arch)
    connections = ((source, node) for (source, node), op in zip(NB201_EDGES, ops) if op != NONE)
    return _longest_paths(connections, sources=(0,)).get(3, 0)
