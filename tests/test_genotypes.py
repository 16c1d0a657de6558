"""Genotype formats, derivation from architecture weights, and files."""

import json

import numpy as np
import pytest

from jaxnas.spaces import (DARTS_EDGES, DARTS_OPS, NB201_OPS, DartsGenotype, NB201Genotype,
                           PUBLISHED, derive_darts_cell, derive_nb201, genotype_from_dict,
                           load_genotype, save_genotype)

ARCH = "|nor_conv_3x3~0|+|none~0|skip_connect~1|+|avg_pool_3x3~0|nor_conv_1x1~1|nor_conv_3x3~2|"


def test_nb201_arch_string_round_trip():
    genotype = NB201Genotype.from_arch_str(ARCH)
    assert genotype.ops == ("nor_conv_3x3", "none", "skip_connect", "avg_pool_3x3",
                            "nor_conv_1x1", "nor_conv_3x3")
    assert genotype.arch_str == ARCH
    assert NB201Genotype.from_arch_str(genotype.arch_str) == genotype


@pytest.mark.parametrize("arch,match", [
    ("|nor_conv_3x3~0|+|none~0|skip_connect~1|", "expected"),
    ("|nor_conv_3x3~0|+|none~0|+|avg_pool_3x3~0|nor_conv_1x1~1|nor_conv_3x3~2|", "node 2 must have 2 incoming edge"),
    ("|nor_conv_3x3~0|+|none~1|skip_connect~1|+|avg_pool_3x3~0|nor_conv_1x1~1|none~2|",
     "must come from node 0"),
    ("|conv_9x9~0|+|none~0|skip_connect~1|+|avg_pool_3x3~0|nor_conv_1x1~1|none~2|", "conv_9x9"),
])
def test_malformed_arch_strings_are_explained(arch, match):
    with pytest.raises(ValueError, match=match):
        NB201Genotype.from_arch_str(arch)


def test_derive_nb201_takes_the_argmax_of_every_edge():
    weights = np.full((6, 5), 0.1)
    chosen = [3, 0, 1, 4, 2, 3]
    weights[np.arange(6), chosen] = 0.6
    genotype = derive_nb201(weights)
    assert genotype.ops == tuple(NB201_OPS[i] for i in chosen)


def test_derive_darts_cell_excludes_none_and_keeps_the_two_strongest_edges():
    # Node 2 <- {0, 1}; node 3 <- {0, 1, 2}; node 4 <- {0..3}; node 5 <- {0..4}.
    weights = np.full((14, 8), 0.05)
    none = DARTS_OPS.index("none")
    weights[:, none] = 0.9  # 'none' dominates everywhere and must still be ignored
    strong = {  # edge -> (op, strength of that op)
        (0, 2): ("sep_conv_3x3", 0.3), (1, 2): ("max_pool_3x3", 0.2),
        (0, 3): ("skip_connect", 0.1), (1, 3): ("dil_conv_3x3", 0.4), (2, 3): ("avg_pool_3x3", 0.3),
        (0, 4): ("sep_conv_5x5", 0.25), (3, 4): ("dil_conv_5x5", 0.35),
        (2, 5): ("skip_connect", 0.5), (4, 5): ("sep_conv_3x3", 0.45), (1, 5): ("max_pool_3x3", 0.4),
    }
    for edge, (op, value) in strong.items():
        weights[DARTS_EDGES.index(edge), DARTS_OPS.index(op)] = value
    genes = derive_darts_cell(weights)
    assert genes == (("sep_conv_3x3", 0), ("max_pool_3x3", 1),
                     ("dil_conv_3x3", 1), ("avg_pool_3x3", 2),
                     ("dil_conv_5x5", 3), ("sep_conv_5x5", 0),
                     ("skip_connect", 2), ("sep_conv_3x3", 4))


def test_darts_genotype_json_and_string_round_trip(tmp_path):
    genotype = PUBLISHED["DARTS_V2"]
    path = tmp_path / "genotype.json"
    save_genotype(genotype, path, step=7)
    data = json.loads(path.read_text())
    assert data["space"] == "darts" and data["step"] == 7
    assert data["normal"][0] == ["sep_conv_3x3", 0]
    assert load_genotype(path) == genotype
    assert DartsGenotype.from_string(str(genotype)) == genotype
    # The text printed by the original DARTS code, with range(2, 6) concats, parses too.
    text = ("Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), "
            "('sep_conv_3x3', 1), ('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), "
            "('dil_conv_3x3', 2)], normal_concat=range(2, 6), reduce=[('max_pool_3x3', 0), "
            "('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 1), ('max_pool_3x3', 0), "
            "('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)], "
            "reduce_concat=range(2, 6))")
    assert load_genotype(text) == genotype


def test_nb201_genotype_json_holds_the_arch_string(tmp_path):
    path = tmp_path / "g.json"
    save_genotype(NB201Genotype.from_arch_str(ARCH), path)
    assert json.loads(path.read_text())["arch_str"] == ARCH
    assert load_genotype(path).arch_str == ARCH
    assert load_genotype(ARCH).arch_str == ARCH


def test_variable_in_degree_genes():
    # TND-NAS style: (op, input, node) triples, 0 to 3 inputs per node.
    genotype = DartsGenotype(
        normal=(("sep_conv_3x3", 0, 2), ("skip_connect", 1, 2), ("conv_3x3", 1, 2),
                ("dil_conv_3x3", 2, 4), ("max_pool_3x3", 0, 5)),
        normal_concat=(2, 3, 4, 5), reduce=(("max_pool_3x3", 0, 2),), reduce_concat=(2, 3, 4, 5))
    assert genotype.edges("normal")[2] == ("conv_3x3", 1, 2)
    assert genotype_from_dict(json.loads(json.dumps(genotype.to_dict()))) == genotype


@pytest.mark.parametrize("data,match", [
    ({"space": "nasnet"}, "Unknown genotype space"),
    ({"space": "darts", "normal": []}, "lacks the field"),
    ({"space": "darts", "normal": [["sep_conv_3x3", 4]], "normal_concat": [2],
      "reduce": [], "reduce_concat": [2]}, "not an earlier node"),
    ({"space": "darts", "normal": [["sep_conv_3x3"]], "normal_concat": [2],
      "reduce": [], "reduce_concat": [2]}, r"must be \(op, input\)"),
])
def test_malformed_genotypes_are_explained(data, match):
    with pytest.raises(ValueError, match=match):
        genotype_from_dict(data)


def test_load_genotype_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="DARTS_V2"):
        load_genotype(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_genotype(bad)


def test_genotype_file_holding_a_list_is_explained(tmp_path):
    path = tmp_path / "genotype.json"
    path.write_text(json.dumps([["sep_conv_3x3", 0], ["skip_connect", 1]]))
    with pytest.raises(ValueError) as excinfo:
        load_genotype(path)
    message = str(excinfo.value)
    assert str(path) in message and "got list [[" in message
    assert 'JSON object with a "space" key' in message and "genotype.json" in message
    with pytest.raises(ValueError, match="got str 'DARTS_V2'"):
        genotype_from_dict("DARTS_V2")


def test_nb201_genotype_without_arch_str_or_ops_is_explained():
    with pytest.raises(ValueError, match='neither an "arch_str" nor an "ops"'):
        genotype_from_dict({"space": "nb201"})


GENES = "[('sep_conv_3x3', 0), ('sep_conv_3x3', 1)]"


def test_genotype_string_with_positional_arguments_is_explained():
    text = f"Genotype({GENES}, [2], {GENES}, [2])"
    with pytest.raises(ValueError) as excinfo:
        load_genotype(text)
    message = str(excinfo.value)
    assert "4 positional" in message
    assert "normal=, normal_concat=, reduce=, reduce_concat=" in message
    assert "as the DARTS code prints it" in message


def test_genotype_string_with_unknown_or_missing_fields_is_explained():
    text = f"Genotype(normal={GENES}, normal_concat=[2], reduce={GENES}, reduce_cat=[2], seed=1)"
    with pytest.raises(ValueError) as excinfo:
        DartsGenotype.from_string(text)
    message = str(excinfo.value)
    assert "unknown field(s) ['reduce_cat', 'seed']" in message
    assert "the fields are normal, normal_concat, reduce, reduce_concat" in message
    with pytest.raises(ValueError, match=r"lacks the field\(s\) \['reduce_concat'\]"):
        DartsGenotype.from_string(f"Genotype(normal={GENES}, normal_concat=[2], reduce={GENES})")
