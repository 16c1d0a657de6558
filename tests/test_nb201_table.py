"""NAS-Bench-201 lookup: arch-string parsing, CSV loading and errors, and the published values."""

import csv
import math
import sys
import time
from types import SimpleNamespace

import numpy as np
import pytest

from jaxnas.benchmarks import (
    ACCURACY_COLUMNS,
    ArchNotFoundError,
    NB201Lookup,
    NB201Table,
    column_name,
    parse_arch_str,
    unique_str,
)


ALL_SKIP = ("|skip_connect~0|+|skip_connect~0|skip_connect~1|"
            "+|skip_connect~0|skip_connect~1|skip_connect~2|")
ALL_CONV3 = ("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|"
             "+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|")
ALL_NONE = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
# The two cells differ only in the op of edge 1<-0, whose node 1 never reaches the output.
DEAD_CONV1 = "|nor_conv_1x1~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|"
DEAD_CONV3 = "|nor_conv_3x3~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|"


# ---------------------------------------------------------------- arch strings


def test_parse_arch_str_returns_ops_in_edge_order():
    arch = "|nor_conv_3x3~0|+|none~0|skip_connect~1|+|avg_pool_3x3~0|nor_conv_1x1~1|none~2|"
    assert parse_arch_str(arch) == ("nor_conv_3x3", "none", "skip_connect", "avg_pool_3x3",
                                    "nor_conv_1x1", "none")
    assert parse_arch_str(SimpleNamespace(arch_str=ALL_SKIP)) == ("skip_connect",) * 6


@pytest.mark.parametrize("arch, problem", [
    ("|none~0|+|none~0|none~1|", "expected 3 nodes"),
    ("|none~0|+|none~0|+|none~0|none~1|none~2|", "node 2 must have 2 incoming edge(s), found 1"),
    ("|conv_5x5~0|+|none~0|none~1|+|none~0|none~1|none~2|", "unknown op 'conv_5x5' on node 1"),
    ("|none~0|+|none~1|none~0|+|none~0|none~1|none~2|", "must come from node 0"),
    ("|none~0|+|none~0|none~1|+|none~0|none~1|none~3|", "must come from node 2"),
    ("none~0|+|none~0|none~1|+|none~0|none~1|none~2|", "must start and end with '|'"),
    ("|none0|+|none~0|none~1|+|none~0|none~1|none~2|", "must be written op~input"),
])
def test_parse_arch_str_names_the_problem(arch, problem):
    with pytest.raises(ValueError) as excinfo:
        parse_arch_str(arch)
    assert problem in str(excinfo.value)
    assert arch in str(excinfo.value)


def test_parse_arch_str_rejects_non_strings():
    with pytest.raises(TypeError, match="arch_str"):
        parse_arch_str(["none"] * 6)


def test_unique_str_by_hand():
    # Node 1 = '0', node 2 = '0+0', node 3 = sorted('0', '0', '0+0') joined by '+'.
    assert unique_str(ALL_SKIP) == "0+0+0+0"
    # Every term is zero: three '#' on the output node.
    assert unique_str(ALL_NONE) == "#+#+#"
    # Output = skip(node 0) + none + none -> '#+#+0' for both, whatever the dead edge computes.
    assert unique_str(DEAD_CONV1) == unique_str(DEAD_CONV3) == "#+#+0"


def test_column_name():
    assert column_name("cifar10", "test") == "c10_test_200"
    assert column_name("ImageNet16-120", "val_12") == "in16_val_12"
    assert column_name("cifar100", "nats_test") == "nats_c100_test_200"
    with pytest.raises(ValueError, match="'svhn'"):
        column_name("svhn", "test")
    with pytest.raises(ValueError, match="'train'"):
        column_name("cifar10", "train")


# ---------------------------------------------------------------- a small hand-made table

# Three rows with made-up accuracies (a user's fixture); the best cell differs per column.
FIXTURE = [
    (7, ALL_SKIP, [40.0, 54.0, 15.0, 16.0, 16.5, 16.25] + [54.0, 15.0, 16.0] + [34.0] * 6),
    (3, ALL_CONV3, [90.0, 93.5, 70.0, 71.0, 44.0, 44.5] + [93.75, 71.0, 44.5] + [80.0] * 6),
    (5, DEAD_CONV1, [91.0, 93.0, 71.5, 70.5, 43.0, 45.0] + [93.0, 70.5, 45.0] + [81.0] * 6),
]


def write_csv(path, rows, columns=("index", "arch_str", *ACCURACY_COLUMNS, "unique_str")):
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(columns)
        for index, arch, values in rows:
            canonical = unique_str(arch) if arch in (ALL_SKIP, ALL_CONV3, DEAD_CONV1) else "?"
            record = {"index": index, "arch_str": arch, "unique_str": canonical,
                      **dict(zip(ACCURACY_COLUMNS, values))}
            writer.writerow([record[c] for c in columns])
    return path


@pytest.fixture
def small_table(tmp_path):
    return NB201Table.load(write_csv(tmp_path / "small.csv", FIXTURE))


def test_small_table_query(small_table):
    assert len(small_table) == 3
    result = small_table.query(ALL_CONV3)
    assert result.index == 3
    assert result.arch_str == ALL_CONV3
    assert result.c10_test_200 == 93.5
    assert result.nats_c10_test_200 == 93.75
    assert result.in16_test_12 == 80.0
    assert result.unique_str == unique_str(ALL_CONV3)
    assert result.accuracy("cifar100", "val") == 70.0
    assert small_table.query(SimpleNamespace(arch_str=DEAD_CONV1)).index == 5
    assert small_table.query(7).arch_str == ALL_SKIP
    assert small_table.index_of(ALL_SKIP) == 7
    assert ALL_SKIP in small_table and ALL_NONE not in small_table


def test_small_table_best_and_columns(small_table):
    assert small_table.best().index == 3  # cifar10 test: 93.5 > 93.0 > 54.0
    assert small_table.best("cifar10", "val").index == 5  # 91.0
    assert small_table.best("cifar10", "nats_test").index == 3  # 93.75
    assert small_table.best("cifar100").index == 3  # 71.0
    assert small_table.best("imagenet16-120").index == 5  # 45.0
    np.testing.assert_array_equal(small_table.column("index"), [7, 3, 5])
    np.testing.assert_array_equal(small_table.column("c100_val_200"), [15.0, 70.0, 71.5])
    assert small_table.column("c10_test_200").dtype == np.float32
    with pytest.raises(ValueError, match="'c10_test'"):
        small_table.column("c10_test")


def test_unknown_and_malformed_queries(small_table):
    with pytest.raises(KeyError) as excinfo:
        small_table.query(ALL_NONE)
    assert isinstance(excinfo.value, ArchNotFoundError)
    message = str(excinfo.value)
    assert ALL_NONE in message and "|op~0|+|op~0|op~1|+|op~0|op~1|op~2|" in message
    with pytest.raises(ArchNotFoundError, match="index 4"):
        small_table.query(4)
    with pytest.raises(ValueError, match="unknown op 'sep_conv_3x3'"):
        small_table.query(ALL_SKIP.replace("skip_connect~2", "sep_conv_3x3~2"))


def test_isomorphic_strings_match_only_exactly(tmp_path):
    table = NB201Table.load(write_csv(tmp_path / "t.csv", FIXTURE[2:]))
    assert table.query(DEAD_CONV1).index == 5
    with pytest.raises(ArchNotFoundError):
        table.query(DEAD_CONV3)  # isomorphic to DEAD_CONV1, but written differently


def test_to_csv_round_trip(small_table, tmp_path):
    small_table.to_csv(tmp_path / "copy.csv")
    copy = NB201Table.load(tmp_path / "copy.csv")
    assert copy.arch_strs == small_table.arch_strs
    assert copy.unique_strs == small_table.unique_strs
    np.testing.assert_array_equal(copy.indices, small_table.indices)
    np.testing.assert_array_equal(copy.accuracies, small_table.accuracies)
    with (tmp_path / "copy.csv").open() as f:
        ops = [row["ops"] for row in csv.DictReader(f)]
    assert ops == ["111111", "333333", "200100"]


# ---------------------------------------------------------------- loading errors


def test_missing_file_names_the_path_and_how_to_build_it(tmp_path):
    path = tmp_path / "nowhere" / "nb201.csv"
    with pytest.raises(FileNotFoundError) as excinfo:
        NB201Table.load(path)
    assert str(path) in str(excinfo.value)
    assert "from_nats_bench" in str(excinfo.value) and "to_csv" in str(excinfo.value)


def test_missing_columns_are_named(tmp_path):
    columns = ("index", "arch_str", *ACCURACY_COLUMNS[1:-1], "unique_str")
    path = write_csv(tmp_path / "t.csv", FIXTURE, columns=columns)
    with pytest.raises(ValueError) as excinfo:
        NB201Table.load(path)
    assert "['c10_val_200', 'in16_test_12']" in str(excinfo.value)


@pytest.mark.parametrize("rows, problem", [
    ([(1, ALL_SKIP, ["n/a"] + [1.0] * 14)], "line 2"),
    ([(1, ALL_SKIP, [1.0] * 15), (2, ALL_SKIP, [2.0] * 15)], "appears twice"),
    ([(1, ALL_SKIP, [1.0] * 15), (1, ALL_CONV3, [2.0] * 15)], "duplicate NB201 indices"),
    ([(1, ALL_SKIP, [1.0] * 15), (2, ALL_SKIP.replace("skip_connect~0|+", "skip~0|+", 1),
                                  [2.0] * 15)], "row 1 .*unknown op 'skip' on node 1"),
    ([(1, ALL_SKIP, [1.0] * 14 + ["nan"])], r"rows \[0\] .* NaN"),
    ([], "at least one row"),
])
def test_bad_rows_are_rejected(tmp_path, rows, problem):
    with pytest.raises(ValueError, match=problem):
        NB201Table.load(write_csv(tmp_path / "t.csv", rows))


def test_from_nats_bench_without_the_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "nats_bench", None)  # makes `import nats_bench` fail
    with pytest.raises(ImportError) as excinfo:
        NB201Table.from_nats_bench("/nonexistent/NATS-tss-v1_0-3ffb9-simple")
    message = str(excinfo.value)
    assert "pip install nats_bench" in message
    assert "NB201Table.load" in message


# ---------------------------------------------------------------- the published table


@pytest.fixture(scope="module")
def table(nb201_table_path):
    return NB201Table.load(nb201_table_path)


def test_full_table_loads_quickly(nb201_table_path):
    start = time.perf_counter()
    table = NB201Table.load(nb201_table_path)
    assert time.perf_counter() - start < 5.0  # about 0.15 s on one core; generous bound
    assert len(table) == 15625
    np.testing.assert_array_equal(np.sort(table.column("index")), np.arange(15625))


def test_published_best_cells(table):
    # NAS-Bench-201 (Dong & Yang 2020), optimal cells: CIFAR-10 94.37 test (91.61 val),
    # CIFAR-100 73.51 test, ImageNet16-120 47.31 test.
    best = table.best("cifar10", "test")
    assert best.index == 6111
    assert best.c10_test_200 == pytest.approx(94.37, abs=0.005)
    assert best.c10_val_200 == pytest.approx(91.61, abs=0.005)
    best = table.best("cifar100", "test")
    assert (best.index, round(best.c100_test_200, 2)) == (9930, 73.51)
    best = table.best("imagenet16-120", "test")
    assert (best.index, round(best.in16_test_200, 2)) == (857, 47.31)


def test_published_reference_cells(table):
    skip = table.query(ALL_SKIP)
    assert skip.index == 1835
    assert skip.c10_test_200 == pytest.approx(54.30, abs=0.005)
    assert skip.c100_test_200 == pytest.approx(15.61, abs=0.005)
    assert skip.in16_test_200 == pytest.approx(16.32, abs=0.005)
    conv = table.query(ALL_CONV3)
    assert conv.index == 1462
    assert conv.c10_test_200 == pytest.approx(93.76, abs=0.005)


def test_unique_str_reproduces_the_table(table):
    # NATS-Bench's canonical strings, computed here, agree on every row: 6,466 classes.
    computed = [unique_str(a) for a in table.arch_strs]
    assert computed == list(table.unique_strs)
    assert len(set(computed)) == 6466


# ---------------------------------------------------------------- a partial copy of the table


@pytest.fixture
def partial_table_path(nb201_table_path, tmp_path):
    """The header and first 20 rows of the published table (without ALL_SKIP or ALL_CONV3)."""
    with open(nb201_table_path, newline="") as f:
        lines = [next(f) for _ in range(21)]
    path = tmp_path / "partial.csv"
    path.write_text("".join(lines))
    return path


def test_partial_table_warns_on_load_and_names_its_path(partial_table_path, caplog):
    with caplog.at_level("WARNING", logger="jaxnas"):
        table = NB201Table.load(partial_table_path)
    assert len(table) == 20 and table.source == partial_table_path
    assert str(partial_table_path) in caplog.text and "has 20 rows, not the 15625" in caplog.text
    with pytest.raises(ArchNotFoundError) as excinfo:
        table.query(ALL_CONV3)
    message = str(excinfo.value)
    assert str(partial_table_path) in message and "20 of 15625 cells" in message
    assert "load the full table" in message
    with pytest.raises(KeyError, match=str(partial_table_path)):
        table.query(15624)


def test_full_table_loads_without_a_warning(nb201_table_path, caplog):
    with caplog.at_level("WARNING", logger="jaxnas"):
        NB201Table.load(nb201_table_path)
    assert caplog.text == ""


def test_lookup_of_a_cell_missing_from_a_partial_table(partial_table_path, caplog):
    from jaxnas.spaces import NB201Genotype

    lookup = NB201Lookup(NB201Table.load(partial_table_path))
    present = NB201Genotype.from_arch_str(lookup.table.arch_strs[0])
    assert lookup.scores(present)["nb201/c10_test"] == lookup.table.query(present).c10_test_200
    assert lookup.record(present)["nb201"]["arch_str"] == present.arch_str
    missing = NB201Genotype.from_arch_str(ALL_CONV3)
    with caplog.at_level("WARNING", logger="jaxnas"):
        for _ in range(3):  # the engine asks at every log step
            scores = lookup.scores(missing)
            assert set(scores) == {"nb201/c10_test", "nb201/c100_test", "nb201/in16_test"}
            assert all(math.isnan(v) for v in scores.values())
            assert math.isnan(scores[lookup.headline])
        assert lookup.record(missing) == {}
        assert "not in the NB201 table" in lookup.describe(missing)
    warnings = [r.getMessage() for r in caplog.records if ALL_CONV3 in r.getMessage()]
    assert len(warnings) == 1
    assert str(partial_table_path) in warnings[0]
