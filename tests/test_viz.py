"""Figures: cell drawings, architecture weights and training curves are written, valid and show
what they should (checked through the PNG pixels, the SVG text and the returned drawing)."""

import json
import os
import re
import subprocess
import sys

import matplotlib.image
import numpy as np
import pytest

from jaxnas.spaces.genotypes import DartsGenotype, NB201Genotype
from jaxnas.spaces.ops import DARTS_OPS, NB201_OPS
from jaxnas.spaces.published import DARTS_V1, DARTS_V2
from jaxnas.viz import (
    OP_COLORS,
    draw_cell,
    load_arch_weight_history,
    op_color,
    plot_alpha_schedule,
    plot_arch_weights,
    plot_training_curves,
    save_genotype_figure,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
NB201_ARCH = ("|nor_conv_3x3~0|+|none~0|skip_connect~1|+"
              "|avg_pool_3x3~0|nor_conv_1x1~1|skip_connect~2|")
# A TND-NAS-style cell: (op, input, node) triples, nodes with 0, 1, 3 and 5 inputs, a none gene.
TND = DartsGenotype(
    normal=(("none", 1, 3), ("sep_conv_3x3", 0, 3), ("skip_connect", 0, 4),
            ("max_pool_3x3", 1, 4), ("dil_conv_5x5", 3, 4), ("sep_conv_5x5", 0, 5),
            ("skip_connect", 1, 5), ("avg_pool_3x3", 2, 5), ("dil_conv_3x3", 3, 5),
            ("sep_conv_3x3", 4, 5)),
    normal_concat=(2, 3, 4, 5),
    reduce=(("max_pool_3x3", 0, 2), ("max_pool_3x3", 1, 2), ("skip_connect", 2, 3)),
    reduce_concat=(2, 3),
)


def assert_png(path, min_size=200):
    """A real, non-blank PNG image of at least ``min_size`` pixels each way."""
    with open(path, "rb") as f:
        assert f.read(8) == PNG_SIGNATURE
    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and min(image.shape[:2]) >= min_size, image.shape
    assert np.any(image != image[0, 0]), "blank image: a single colour"
    non_white = np.any(image[..., :3] < 0.9, axis=-1).mean()
    assert 0.01 < non_white < 0.6, non_white


def svg_texts(path):
    with open(path, encoding="utf-8") as f:
        return re.findall(r"<text[^>]*>([^<]*)</text>", f.read())


def label_overlaps(drawn):
    """Pairs of label boxes that overlap within a cell."""
    overlaps = []
    for edges in drawn.values():
        boxes = [e.label_box for e in edges]
        overlaps += [(a, b) for i, a in enumerate(boxes) for b in boxes[i + 1:]
                     if min(a[2], b[2]) > max(a[0], b[0]) and min(a[3], b[3]) > max(a[1], b[1])]
    return overlaps


def test_palette_is_fixed_and_covers_both_spaces():
    for op in DARTS_OPS + NB201_OPS:
        assert op_color(op) == OP_COLORS[op]
    assert len({OP_COLORS[op] for op in DARTS_OPS}) == len(DARTS_OPS)
    assert len({OP_COLORS[op] for op in NB201_OPS}) == len(NB201_OPS)
    assert op_color("my_op") == op_color("my_op")


def test_darts_genotype_figure_png_and_svg(tmp_path):
    paths = save_genotype_figure(DARTS_V2, tmp_path / "genotype")
    assert paths == [str(tmp_path / "genotype.png"), str(tmp_path / "genotype.svg")]
    assert_png(paths[0])
    texts = svg_texts(paths[1])
    assert {"normal cell", "reduction cell"} <= set(texts)
    ops = [op for op, *_ in DARTS_V2.normal + DARTS_V2.reduce]
    assert sorted(t for t in texts if t in DARTS_OPS) == sorted(ops)  # one label per gene
    assert sorted(os.listdir(tmp_path)) == ["genotype.png", "genotype.svg"]  # no temp files


def test_nb201_cell_omits_the_none_edge(tmp_path):
    genotype = NB201Genotype.from_arch_str(NB201_ARCH)
    drawn = draw_cell(genotype, tmp_path / "cell.svg")
    assert [(e.op, e.src, e.dst) for e in drawn["cell"]] == [
        ("nor_conv_3x3", 0, 1), ("skip_connect", 1, 2), ("avg_pool_3x3", 0, 3),
        ("nor_conv_1x1", 1, 3), ("skip_connect", 2, 3)]
    texts = svg_texts(tmp_path / "cell.svg")
    assert sorted(t for t in texts if t in NB201_OPS) == sorted(
        ["nor_conv_3x3", "skip_connect", "avg_pool_3x3", "nor_conv_1x1", "skip_connect"])
    assert {"in", "1", "2", "out", "NAS-Bench-201 cell"} <= set(texts)
    draw_cell(genotype, tmp_path / "cell.png")
    assert_png(tmp_path / "cell.png")


def test_tnd_cell_with_any_number_of_inputs(tmp_path):
    drawn = draw_cell(TND, tmp_path / "tnd.png")
    for cell in ("normal", "reduce"):
        assert [(e.op, e.src, e.dst) for e in drawn[cell]] == [
            gene for gene in TND.edges(cell) if gene[0] != "none"]
    assert_png(tmp_path / "tnd.png")
    assert list(draw_cell(TND, tmp_path / "reduce.png", cell="reduce")) == ["reduce"]


@pytest.mark.parametrize("genotype", [
    DARTS_V1, DARTS_V2, TND, NB201Genotype.from_arch_str(NB201_ARCH),
    NB201Genotype(("skip_connect",) * 6), NB201Genotype(("none", "nor_conv_3x3") * 3)],
    ids=["darts_v1", "darts_v2", "tnd", "nb201", "nb201_skips", "nb201_nones"])
def test_edge_labels_do_not_overlap(genotype, tmp_path):
    drawn = draw_cell(genotype, tmp_path / "cell.png")
    assert label_overlaps(drawn) == []


def test_draw_cell_errors(tmp_path):
    with pytest.raises(ValueError, match="'reduction'"):
        draw_cell(DARTS_V2, tmp_path / "x.png", cell="reduction")
    with pytest.raises(ValueError, match="single cell"):
        draw_cell(NB201Genotype(("skip_connect",) * 6), tmp_path / "x.png", cell="normal")
    with pytest.raises(TypeError, match="str"):
        draw_cell(NB201_ARCH, tmp_path / "x.png")
    with pytest.raises(ValueError, match="extension"):
        draw_cell(DARTS_V2, tmp_path / "x.xyz")
    assert os.listdir(tmp_path) == []


def softmax(logits):
    e = np.exp(logits - logits.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def test_plot_arch_weights_one_file_per_key(tmp_path):
    rng = np.random.default_rng(0)
    drift = {key: rng.normal(size=(14, len(DARTS_OPS))) for key in ("normal", "reduce")}
    history = [(step, {k: softmax(step / 100 * d) for k, d in drift.items()})
               for step in range(0, 501, 50)]
    written = plot_arch_weights(history, tmp_path / "arch_weights.png", DARTS_OPS)
    assert written == [str(tmp_path / "arch_weights_normal.png"),
                       str(tmp_path / "arch_weights_reduce.png")]
    for path in written:
        assert_png(path)
    single = [(s, {"cell": softmax(s / 100 * rng.normal(size=(6, 5)))}) for s in (0, 10, 20)]
    assert plot_arch_weights(single, tmp_path / "nb201.png", NB201_OPS) == [
        str(tmp_path / "nb201.png")]
    assert_png(tmp_path / "nb201.png")


def test_plot_arch_weights_of_edges_with_their_own_operations(tmp_path):
    # A staged search's shrunk cells: each edge holds its own two operations.
    edge_ops = {"normal": tuple(DARTS_OPS[e % 4: e % 4 + 2] for e in range(14)),
                "reduce": ((DARTS_OPS[0], DARTS_OPS[3]),) * 14}
    history = [(s, {k: softmax(np.full((14, 2), float(s))) for k in edge_ops}) for s in (1, 2)]
    written = plot_arch_weights(history, tmp_path / "w.png", edge_ops)
    assert written == [str(tmp_path / "w_normal.png"), str(tmp_path / "w_reduce.png")]
    for path in written:
        assert_png(path)
    with pytest.raises(ValueError, match=r"expected \[14, 2\]"):
        plot_arch_weights([(0, {"normal": softmax(np.zeros((14, 3)))})], tmp_path / "x.png",
                          {"normal": edge_ops["normal"]})


def test_plot_arch_weights_errors(tmp_path):
    weights = softmax(np.zeros((6, 5)))
    with pytest.raises(ValueError, match="empty"):
        plot_arch_weights([], tmp_path / "w.png", NB201_OPS)
    with pytest.raises(ValueError, match=r"expected \[6, 8\] to match the operations"):
        plot_arch_weights([(0, {"cell": weights})], tmp_path / "w.png", DARTS_OPS)
    with pytest.raises(ValueError, match="activation"):
        plot_arch_weights([(0, {"cell": weights - 0.5})], tmp_path / "w.png", NB201_OPS)
    with pytest.raises(ValueError, match="3 edge names"):
        plot_arch_weights([(0, {"cell": weights})], tmp_path / "w.png", NB201_OPS,
                          edge_names=["a", "b", "c"])
    assert os.listdir(tmp_path) == []


def write_jsonl(path, records, tail=""):
    path.write_text("".join(json.dumps(r) + "\n" for r in records) + tail)
    return path


def test_arch_weight_history_round_trips(tmp_path):
    w0, w1, w2 = (softmax(np.arange(10.0).reshape(2, 5) * s) for s in (0.0, 0.5, 1.0))
    path = write_jsonl(tmp_path / "metrics.jsonl", [
        {"step": 0, "loss": 2.0, "arch_weights": {"cell": w0.tolist()}},
        {"step": 5, "loss": 1.5},
        {"step": 10, "arch_weights": {"cell": w1.tolist()}},
        {"step": 10, "arch_weights": {"cell": w2.tolist()}},  # logged again after a resume
        {"note": "no step"},
    ], tail='{"step": 20, "arch_weights": {"cell": [[0.1, ')  # cut short by a kill
    history = load_arch_weight_history(path)
    assert [step for step, _ in history] == [0, 10]
    np.testing.assert_allclose(history[0][1]["cell"], w0)
    np.testing.assert_allclose(history[1][1]["cell"], w2)
    assert load_arch_weight_history(write_jsonl(tmp_path / "none.jsonl", [{"step": 1}])) == []


def test_training_curves_with_missing_keys(tmp_path):
    records = [{"step": s, "loss": 2.0 / (1 + s), "lr": 0.1, "phase": "search"}
               for s in range(0, 100, 10)]
    records += [{"step": s, "val_loss": 2.5 / (1 + s), "val_accuracy": s / 100,
                 "arch_weights": {"cell": [[0.5, 0.5]]}} for s in range(0, 100, 30)]
    metrics = write_jsonl(tmp_path / "metrics.jsonl", records)
    out = plot_training_curves(metrics, tmp_path / "curves.png")
    assert out == str(tmp_path / "curves.png")
    assert_png(out)
    svg = plot_training_curves(metrics, tmp_path / "curves.svg", keys=["val_accuracy", "lr"])
    assert {"val_accuracy", "lr"} <= set(svg_texts(svg))
    assert "loss" not in svg_texts(svg) and "phase" not in svg_texts(svg)


def test_alpha_schedule_figure(tmp_path):
    # A FIMT-like log: a move every 11th step, logged every step; then a CS10 log without fimt/*.
    records = [{"step": s, "arch/alpha_updates": s // 11, "fimt/statistic": 5.0 + s % 3,
                "fimt/ewma": 5.0, "fimt/tau": 4.0 * 1.05 ** (s % 11)} for s in range(1, 60)]
    out = plot_alpha_schedule(write_jsonl(tmp_path / "m.jsonl", records), tmp_path / "a.svg")
    texts = svg_texts(out)
    assert {"statistic", "ewma", "tau"} <= set(texts)
    assert any("5 in 59 steps" in t for t in texts)
    cs10 = [{"step": s, "arch/alpha_updates": s // 10} for s in range(5, 105, 5)]
    assert_png(plot_alpha_schedule(write_jsonl(tmp_path / "c.jsonl", cs10), tmp_path / "c.png"))
    with pytest.raises(ValueError, match="no 'arch/alpha_updates'"):
        plot_alpha_schedule(write_jsonl(tmp_path / "n.jsonl", [{"step": 1}]), tmp_path / "n.png")


def test_training_curves_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.jsonl"):
        plot_training_curves(tmp_path / "missing.jsonl", tmp_path / "c.png")
    with pytest.raises(ValueError, match="no numeric metric"):
        plot_training_curves(write_jsonl(tmp_path / "empty.jsonl", []), tmp_path / "c.png")
    no_numbers = write_jsonl(tmp_path / "text.jsonl", [{"step": 1, "phase": "search"}])
    with pytest.raises(ValueError, match="no numeric metric"):
        plot_training_curves(no_numbers, tmp_path / "c.png")
    metrics = write_jsonl(tmp_path / "m.jsonl", [{"step": 1, "loss": 1.0}])
    with pytest.raises(ValueError, match="'accuracy'"):
        plot_training_curves(metrics, tmp_path / "c.png", keys=["accuracy"])
    broken = write_jsonl(tmp_path / "broken.jsonl", [{"step": 1, "loss": 1.0}], "{oops\n")
    with pytest.raises(ValueError, match="Line 2"):
        plot_training_curves(broken, tmp_path / "c.png")
    assert not (tmp_path / "c.png").exists()


def test_figures_leave_pyplot_alone(tmp_path):
    script = (
        "import sys\n"
        "from jaxnas.spaces.published import DARTS_V2\n"
        "from jaxnas.viz import save_genotype_figure\n"
        f"save_genotype_figure(DARTS_V2, {str(tmp_path / 'g')!r})\n"
        "assert 'matplotlib.pyplot' not in sys.modules\n")
    subprocess.run([sys.executable, "-c", script], check=True)


def test_plot_pareto_draws_the_runs_and_their_front(tmp_path):
    from jaxnas.viz import plot_pareto

    points = [(1.0, 90.0, "beta=0"), (0.5, 91.0, "beta=-0.6"), (2.0, 92.0, "beta=-0.2")]
    assert plot_pareto(points, tmp_path / "p.png") == str(tmp_path / "p.png")
    assert_png(tmp_path / "p.png")
    with pytest.raises(ValueError, match="No points"):
        plot_pareto([], tmp_path / "q.png")
