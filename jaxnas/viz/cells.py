"""Drawings of derived cells: a layered left-to-right DAG per cell, one colour per operation.

A DARTS genotype draws as its normal and reduction cells side by side: the inputs ``c_{k-2}`` and
``c_{k-1}`` on the left, the intermediate nodes 0, 1, 2, ... in the middle, and on the right the
output ``c_{k}``, the concat of the ``*_concat`` nodes (grey arrows). An NB201 genotype draws as its
single cell ``in -> 1, 2 -> out``. Every other arrow is an edge of the genotype, labelled with its
operation and coloured by ``op_color``; ``none`` edges compute zero and are not drawn.

Layout: nodes are layered by topological depth (longest path from an input). An edge that skips
layers passes through a slot of its own in every layer it crosses, so it curves around the nodes
there; slots are ordered to reduce crossings and spaced to keep edges straight. Each label then
slides along its arrow to the place where it overlaps no node and no other label, and as few
other arrows as possible. All sizes are in inches: one data unit is one inch on the page.

This module also holds what every jaxnas figure shares: the operation palette and the atomic save.
"""

import contextlib
import dataclasses
import os
import tempfile
import zlib
from typing import Iterator, NamedTuple, Sequence

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch
from matplotlib.path import Path

from jaxnas.spaces.genotypes import NB201_EDGES, DartsGenotype, NB201Genotype

# The colour of each operation in every jaxnas figure (cell drawings, architecture weights):
# pools warm, separable and dilated convolutions cool, NB201's plain convolutions purple,
# skip_connect slate and none grey (none is drawn dashed in weight plots, never in cells).
OP_COLORS = {
    "none": "#9e9e9e",
    "skip_connect": "#37474f",
    "avg_pool_3x3": "#ef6c00",
    "max_pool_3x3": "#c62828",
    "max_pool_5x5": "#8d6e63",
    "max_pool_7x7": "#5d4037",
    "sep_conv_3x3": "#1565c0",
    "sep_conv_5x5": "#00838f",
    "sep_conv_7x7": "#283593",
    "dil_conv_3x3": "#2e7d32",
    "dil_conv_5x5": "#827717",
    "nor_conv_1x1": "#ad1457",
    "nor_conv_3x3": "#6a1b9a",
    "conv_1x1": "#d81b60",
    "conv_3x3": "#4527a0",
    "conv_3x1_1x3": "#00695c",
    "conv_7x1_1x7": "#558b2f",
}
# For operations outside OP_COLORS (a user's own), picked by a hash of the name.
_OTHER_COLORS = ("#6d4c41", "#0277bd", "#9e2a2b", "#33691e", "#4a148c", "#bf360c", "#004d40")

FIGURE_DPI = 150  # of the PNG files

_BOX_W = 0.78  # node box width
_BOX_H = 0.42  # node box height, grown for nodes with many arrows
_PORT_GAP = 0.13  # vertical distance between two arrows meeting a box
_LAYER_GAP = 2.35  # between the centres of two layers
_SEPARATION = {"node": 0.55, "slot": 0.17}  # vertical room beyond half a box / around a slot
_LABEL_SIZE = 8.0  # points
_LABEL_PAD = 0.25  # of the label font size, around the text
_HEAD_ROOM = 0.15  # kept free of labels left and right of a box, for the arrowheads
_MARGIN = 0.15
_TITLE_SPACE = 0.45
_FILLS = {"input": "#c8e6c9", "node": "#bbdefb", "output": "#fff59d"}
_CONCAT_COLOR = "#9e9e9e"


def op_color(op: str) -> str:
    """The colour of operation ``op`` in every jaxnas figure: ``OP_COLORS[op]``, or for an
    operation not listed there a fixed colour chosen from its name."""
    if op in OP_COLORS:
        return OP_COLORS[op]
    return _OTHER_COLORS[zlib.crc32(op.encode()) % len(_OTHER_COLORS)]


def node_label(space: str, node: int | str) -> str:
    """How figures name a node of a cell of ``space`` ("nb201" or "darts"; DARTS nodes numbered
    as in genotypes, 0 and 1 the inputs, and "out" the concat output)."""
    if space == "nb201":
        return {0: "in", 3: "out"}.get(node, str(node))
    if node == "out":
        return "$c_{k}$"
    return {0: "$c_{k-2}$", 1: "$c_{k-1}$"}.get(node, str(int(node) - 2))


class DrawnEdge(NamedTuple):
    """A labelled arrow of a drawing: the gene ``op`` from node ``src`` to node ``dst`` (genotype
    numbering) and its label's box ``(x0, y0, x1, y1)``, in inches, in its cell's coordinates."""

    op: str
    src: int
    dst: int
    label_box: tuple[float, float, float, float]


@contextlib.contextmanager
def new_figure(**kwargs) -> Iterator[Figure]:
    """A figure on its own Agg canvas, outside pyplot's state; cleared (closed) on exit."""
    fig = Figure(**kwargs)
    FigureCanvasAgg(fig)
    try:
        yield fig
    finally:
        fig.clear()


def save_figure(fig: Figure, path: str | os.PathLike) -> str:
    """Writes ``fig`` to ``path`` in the format its extension names, atomically (a temporary file
    in the same folder, then ``os.replace``). SVG text stays text. Returns the path."""
    path = os.fspath(path)
    fmt = os.path.splitext(path)[1][1:].lower()
    if fmt not in fig.canvas.get_supported_filetypes():
        raise ValueError(
            f"Cannot tell the image format of {path!r} from its extension; end it with one of "
            f"{', '.join('.' + f for f in sorted(fig.canvas.get_supported_filetypes()))}.")
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f, matplotlib.rc_context(
                {"svg.fonttype": "none", "svg.hashsalt": "jaxnas"}):
            fig.savefig(f, format=fmt, dpi=FIGURE_DPI)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return path


@dataclasses.dataclass(frozen=True)
class _Cell:
    """One cell to draw. ``edges`` are ``(op, src, dst)``; op None for the concat arrows."""

    key: str
    title: str
    space: str
    nodes: tuple
    inputs: tuple
    output: int | str
    edges: tuple


def _cells_of(genotype, cell: str | None) -> list[_Cell]:
    """The cells of ``genotype`` to draw: all of them, or the one named ``cell``."""
    if isinstance(genotype, NB201Genotype):
        if cell not in (None, "cell"):
            raise ValueError(f"An NB201 genotype has a single cell; got cell={cell!r}, pass "
                             f"cell=None.")
        edges = tuple((op, src, dst) for op, (src, dst) in zip(genotype.ops, NB201_EDGES)
                      if op != "none")
        return [_Cell("cell", "NAS-Bench-201 cell", "nb201", (0, 1, 2, 3), (0,), 3, edges)]
    if isinstance(genotype, DartsGenotype):
        if cell not in (None, "normal", "reduce"):
            raise ValueError(f"A DARTS genotype has the cells 'normal' and 'reduce' (None draws "
                             f"both); got cell={cell!r}.")
        cells = []
        for key in ("normal", "reduce") if cell is None else (cell,):
            genes = genotype.edges(key)
            concat = genotype.normal_concat if key == "normal" else genotype.reduce_concat
            last = max([1, *(dst for _, _, dst in genes), *concat])
            edges = tuple((op, src, dst) for op, src, dst in genes if op != "none")
            edges += tuple((None, node, "out") for node in concat)
            title = "normal cell" if key == "normal" else "reduction cell"
            cells.append(_Cell(key, title, "darts", (*range(last + 1), "out"), (0, 1), "out",
                               edges))
        return cells
    raise TypeError(f"Cannot draw a {type(genotype).__name__}; pass an NB201Genotype or a "
                    f"DartsGenotype (jaxnas.spaces.genotypes.load_genotype reads one).")


def _depths(cell: _Cell) -> dict:
    """Topological depth of every node: inputs 0, the output one past the deepest node."""
    depth = {}
    for node in cell.nodes:
        if node in cell.inputs:
            depth[node] = 0
        elif node != cell.output:
            depth[node] = 1 + max((depth[src] for _, src, dst in cell.edges if dst == node),
                                  default=0)
    depth[cell.output] = 1 + max(depth.values())
    return depth


def _isotonic(targets: Sequence[float]) -> list[float]:
    """The non-decreasing sequence closest to ``targets`` in least squares (pool adjacent
    violators)."""
    blocks = []  # [mean, count]
    for t in targets:
        blocks.append([t, 1])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            (m2, n2), (m1, n1) = blocks.pop(), blocks.pop()
            blocks.append([(m1 * n1 + m2 * n2) / (n1 + n2), n1 + n2])
    return [m for m, n in blocks for _ in range(n)]


@dataclasses.dataclass
class _Layout:
    """Where things go: ``x``/``y`` of every item (a node ``("node", n)`` or an edge's slot
    ``("slot", edge, layer)``), node box heights, and every edge's chain of items."""

    x: dict
    y: dict
    height: dict
    chains: list


def _layout(cell: _Cell) -> _Layout:
    """Layers by depth, a slot per skipped layer, crossing reduction, then straightening."""
    depth = _depths(cell)
    layers = [[] for _ in range(depth[cell.output] + 1)]
    for node in cell.nodes:
        layers[depth[node]].append(("node", node))
    chains = []
    for e, (_, src, dst) in enumerate(cell.edges):
        slots = [("slot", e, layer) for layer in range(depth[src] + 1, depth[dst])]
        for slot in slots:
            layers[slot[2]].append(slot)
        chains.append([("node", src), *slots, ("node", dst)])
    neighbours = {item: [] for layer in layers for item in layer}
    for chain in chains:
        for a, b in zip(chain, chain[1:]):
            neighbours[a].append(b)
            neighbours[b].append(a)
    height = {node: max(_BOX_H, _PORT_GAP * (1 + max(
        sum(src == node for _, src, _ in cell.edges),
        sum(dst == node for _, _, dst in cell.edges)))) for node in cell.nodes}

    def room(item):  # half the vertical extent an item needs
        return (height[item[1]] / 2 + _SEPARATION["node"] / 2 if item[0] == "node"
                else _SEPARATION["slot"])

    def place(layer, wanted):  # order-preserving y closest to wanted, items top to bottom
        offsets = np.cumsum([0.0] + [room(a) + room(b) for a, b in zip(layer, layer[1:])])
        fitted = _isotonic([-w - o for w, o in zip(wanted, offsets)])
        return {item: -(f + o) for item, f, o in zip(layer, fitted, offsets)}

    y = {}
    for layer in layers:
        y.update(place(layer, [0.0] * len(layer)))
    # Crossing reduction: order the inner layers by the mean height of their neighbours.
    for _ in range(4):
        for layer in layers[1:-1]:
            layer.sort(key=lambda item: -np.mean([y[n] for n in neighbours[item]] or [y[item]]))
            y.update(place(layer, [0.0] * len(layer)))
    # Straightening: move every item towards its neighbours, keeping the order and the room.
    for sweep in range(30):
        for layer in layers if sweep % 2 == 0 else layers[::-1]:
            wanted = [np.mean([y[n] for n in neighbours[item]] or [y[item]]) for item in layer]
            y.update(place(layer, wanted))
    x = {item: depth[item[1]] * _LAYER_GAP if item[0] == "node" else item[2] * _LAYER_GAP
         for item in y}
    return _Layout(x, y, height, chains)


def _edge_paths(layout: _Layout) -> list[tuple[Path, list[tuple]]]:
    """Every edge's arrow path, and its free stretches as cubic segments ``(p0, p1, p2, p3)``
    (in the gaps between layers) or straight ones ``(p0, p3)`` (through a slot)."""
    x, y = layout.x, layout.y

    def ports(node, ends):  # heights where the arrows to/from the items ``ends`` meet the box
        order = sorted(range(len(ends)), key=lambda i: -y[ends[i]])
        spread = _PORT_GAP * (len(ends) - 1)
        heights = [0.0] * len(ends)
        for rank, i in enumerate(order):
            heights[i] = y[node] + spread / 2 - rank * _PORT_GAP
        return heights

    out_ends, in_ends = {}, {}
    for e, chain in enumerate(layout.chains):
        out_ends.setdefault(chain[0], []).append((e, chain[1]))
        in_ends.setdefault(chain[-1], []).append((e, chain[-2]))
    start, end = {}, {}
    for table, result in ((out_ends, start), (in_ends, end)):
        for node, pairs in table.items():
            for (e, _), h in zip(pairs, ports(node, [item for _, item in pairs])):
                result[e] = h
    paths = []
    for e, chain in enumerate(layout.chains):
        points = [(x[chain[0]] + _BOX_W / 2, start[e])]
        for slot in chain[1:-1]:
            points += [(x[slot] - _BOX_W / 2, y[slot]), (x[slot] + _BOX_W / 2, y[slot])]
        points.append((x[chain[-1]] - _BOX_W / 2, end[e]))
        vertices, codes, stretches = [points[0]], [Path.MOVETO], []
        for i, (p0, p3) in enumerate(zip(points, points[1:])):
            if i % 2 == 0:  # a gap between layers: an S-curve, horizontal at both ends
                dx = (p3[0] - p0[0]) / 2
                p1, p2 = (p0[0] + dx, p0[1]), (p3[0] - dx, p3[1])
                vertices += [p1, p2, p3]
                codes += [Path.CURVE4] * 3
                stretches.append((p0, p1, p2, p3))
            else:  # through a slot
                vertices.append(p3)
                codes.append(Path.LINETO)
                stretches.append((p0, p3))
        paths.append((Path(vertices, codes), stretches))
    return paths


def _point_on(stretch: tuple, t: float) -> np.ndarray:
    if len(stretch) == 2:
        return (1 - t) * np.asarray(stretch[0]) + t * np.asarray(stretch[1])
    p0, p1, p2, p3 = (np.asarray(p) for p in stretch)
    return (1 - t) ** 3 * p0 + 3 * (1 - t) ** 2 * t * p1 + 3 * (1 - t) * t ** 2 * p2 + t ** 3 * p3


def _overlap(a, b) -> float:
    """Area shared by the boxes ``(x0, y0, x1, y1)`` a and b."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    return max(w, 0.0) * max(h, 0.0)


_LABEL_T = (0.5, 0.4, 0.6, 0.3, 0.7, 0.22, 0.78)


def _place_labels(sizes: dict, stretches: list, obstacles: list) -> dict:
    """Label centre per labelled edge, chosen among points along its own arrow (curved stretches
    before straight ones, middles before ends): least area over obstacles and placed labels, then
    fewest other arrows under it, then earliest."""
    samples = [np.array([_point_on(s, t) for s in edge for t in np.linspace(0, 1, 25)])
               for edge in stretches]
    placed = {}
    for e, (w, h) in sizes.items():
        ordered = sorted(stretches[e], key=len, reverse=True)
        best = None
        for rank, (stretch, t) in enumerate((s, t) for s in ordered for t in _LABEL_T):
            cx, cy = _point_on(stretch, t)
            box = (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)
            blocked = sum(_overlap(box, b) for b in obstacles + [_box(c, sizes[o])
                                                                  for o, c in placed.items()])
            crossed = sum(int(np.any((pts[:, 0] > box[0]) & (pts[:, 0] < box[2])
                                     & (pts[:, 1] > box[1]) & (pts[:, 1] < box[3])))
                          for other, pts in enumerate(samples) if other != e)
            score = (blocked, crossed, rank)
            if best is None or score < best[0]:
                best = (score, (cx, cy))
        placed[e] = best[1]
    return placed


def _box(centre, size) -> tuple[float, float, float, float]:
    (cx, cy), (w, h) = centre, size
    return (float(cx - w / 2), float(cy - h / 2), float(cx + w / 2), float(cy + h / 2))


@dataclasses.dataclass
class _Drawing:
    """A cell laid out: everything ``_render`` needs, and the extent it covers."""

    cell: _Cell
    layout: _Layout
    paths: list
    labels: dict  # edge index -> (centre, (w, h))
    extent: tuple  # x0, y0, x1, y1


def _arrange(cell: _Cell, fig: Figure) -> _Drawing:
    """Lays ``cell`` out; ``fig`` measures the labels."""
    renderer = fig.canvas.get_renderer()
    font = FontProperties(size=_LABEL_SIZE)
    pad = 2 * _LABEL_PAD * _LABEL_SIZE / 72
    sizes = {}
    for e, (op, _, _) in enumerate(cell.edges):
        if op is not None:
            w, h, _ = renderer.get_text_width_height_descent(op, font, ismath=False)
            sizes[e] = (w / renderer.dpi + pad, h / renderer.dpi + pad)
    layout = _layout(cell)
    paths = _edge_paths(layout)
    nodes = [(layout.x[("node", n)] - _BOX_W / 2, layout.y[("node", n)] - layout.height[n] / 2,
              layout.x[("node", n)] + _BOX_W / 2, layout.y[("node", n)] + layout.height[n] / 2)
             for n in cell.nodes]
    # Labels keep off the boxes and the arrowheads in front of them.
    heads = [(x0 - _HEAD_ROOM, y0, x1 + _HEAD_ROOM, y1) for x0, y0, x1, y1 in nodes]
    centres = _place_labels(sizes, [s for _, s in paths], heads)
    labels = {e: (centres[e], sizes[e]) for e in sizes}
    boxes = nodes + [_box(c, s) for c, s in labels.values()]
    boxes += [(x, y, x, y) for path, _ in paths for x, y in path.vertices]
    extent = tuple(f(b[i] for b in boxes) for f, i in ((min, 0), (min, 1), (max, 2), (max, 3)))
    return _Drawing(cell, layout, paths, labels, extent)


def _render(drawing: _Drawing, ax) -> tuple[DrawnEdge, ...]:
    """Draws a laid-out cell on ``ax``, whose data units are inches."""
    cell, layout = drawing.cell, drawing.layout
    for (op, _, _), (path, _) in zip(cell.edges, drawing.paths):
        color = _CONCAT_COLOR if op is None else op_color(op)
        ax.add_patch(FancyArrowPatch(
            path=path, arrowstyle="-|>,head_length=0.5,head_width=0.25", mutation_scale=14,
            color=color, lw=1.0 if op is None else 1.6, shrinkA=0, shrinkB=0, zorder=1))
    for node in cell.nodes:
        x, y, h = layout.x[("node", node)], layout.y[("node", node)], layout.height[node]
        kind = "input" if node in cell.inputs else "output" if node == cell.output else "node"
        ax.add_patch(FancyBboxPatch((x - _BOX_W / 2, y - h / 2), _BOX_W, h,
                                    boxstyle="round,pad=0,rounding_size=0.08", fc=_FILLS[kind],
                                    ec="#424242", lw=1.2, zorder=2))
        ax.text(x, y, node_label(cell.space, node), ha="center", va="center", fontsize=11,
                zorder=3)
    drawn = []
    for e, ((cx, cy), size) in drawing.labels.items():
        op, src, dst = cell.edges[e]
        color = op_color(op)
        ax.text(cx, cy, op, ha="center", va="center", fontsize=_LABEL_SIZE, color=color,
                zorder=4,
                bbox=dict(boxstyle=f"round,pad={_LABEL_PAD}", fc="white", ec=color, lw=0.8))
        drawn.append(DrawnEdge(op, src, dst, _box((cx, cy), size)))
    ax.set_title(cell.title, fontsize=12, fontweight="bold")
    return tuple(drawn)


def _draw(fig: Figure, genotype, cell: str | None) -> dict[str, tuple[DrawnEdge, ...]]:
    """Lays out and draws the cells of ``genotype`` side by side on ``fig`` (resized to fit)."""
    drawings = [_arrange(c, fig) for c in _cells_of(genotype, cell)]
    widths = [d.extent[2] - d.extent[0] + 2 * _MARGIN for d in drawings]
    height = max(d.extent[3] - d.extent[1] for d in drawings) + 2 * _MARGIN
    fig_w, fig_h = sum(widths) + _MARGIN * (len(widths) + 1), height + _TITLE_SPACE + _MARGIN
    fig.set_size_inches(fig_w, fig_h)
    drawn, left = {}, _MARGIN
    for drawing, width in zip(drawings, widths):
        ax = fig.add_axes((left / fig_w, _MARGIN / fig_h, width / fig_w, height / fig_h))
        ax.set_axis_off()
        x0, y0, x1, y1 = drawing.extent
        ax.set_xlim(x0 - _MARGIN, x1 + _MARGIN)
        ax.set_ylim((y0 + y1 - height) / 2, (y0 + y1 + height) / 2)
        drawn[drawing.cell.key] = _render(drawing, ax)
        left += width + _MARGIN
    return drawn


def draw_cell(genotype: NB201Genotype | DartsGenotype, path: str | os.PathLike,
              cell: str | None = None) -> dict[str, tuple[DrawnEdge, ...]]:
    """Draws the cell(s) of ``genotype`` to ``path`` (PNG, SVG, PDF... by its extension).

    ``cell``: for a DARTS genotype "normal", "reduce", or None for both side by side; None for
    NB201. Returns the labelled arrows drawn per cell ("cell" for NB201, "normal"/"reduce" for
    DARTS), ``none`` genes left out.
    """
    with new_figure() as fig:
        drawn = _draw(fig, genotype, cell)
        save_figure(fig, path)
    return drawn


def save_genotype_figure(genotype: NB201Genotype | DartsGenotype,
                         path_stem: str | os.PathLike) -> list[str]:
    """Writes ``path_stem.png`` and ``path_stem.svg``: all cells of ``genotype`` (both DARTS
    cells side by side). Returns the two paths."""
    with new_figure() as fig:
        _draw(fig, genotype, None)
        return [save_figure(fig, f"{os.fspath(path_stem)}.{fmt}") for fmt in ("png", "svg")]
