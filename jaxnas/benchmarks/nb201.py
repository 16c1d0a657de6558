"""NAS-Bench-201 accuracy lookup from a plain CSV table.

NAS-Bench-201 (Dong & Yang, ICLR 2020) trained every one of the 15,625 cells of its search space
and published their accuracies. This module answers "what accuracy does this cell get?" from a
plain CSV copy of those numbers, so a search can be scored the way papers score it without the
multi-gigabyte official files. `NB201Table.from_nats_bench` reads the official NATS-Bench files
instead when the `nats_bench` package and its data are installed, and `NB201Table.to_csv` writes
the CSV from it.

Arch strings
------------
A cell has nodes 0..3 (0 = cell input, 3 = cell output); node j sums op(node i) over i < j. The
string lists, per node 1..3, its incoming edges in input order::

    |op~0|+|op~0|op~1|+|op~0|op~1|op~2|

so the edge order is (1<-0), (2<-0), (2<-1), (3<-0), (3<-1), (3<-2), and each op is one of
`NB201_OPS`. Lookups match the string exactly: two isomorphic cells (same function, different string)
are different rows. `unique_str` gives NATS-Bench's canonical string, equal for isomorphic cells.

CSV format
----------
One header line, then one row per cell; the stdlib `csv` dialect (comma separated). Columns, in
any order (extra columns are ignored):

- `index`: the NAS-Bench-201 / NATS-Bench architecture index (0..15624), an integer.
- `arch_str`: the arch string above.
- `c10_val_200, c10_test_200, c100_val_200, c100_test_200, in16_val_200, in16_test_200`: accuracy
  in % after 200 epochs, averaged over the benchmark's seeds. CIFAR-10 val is `cifar10-valid` on
  its `x-valid` split; CIFAR-10 test is `cifar10` (trained on train+valid) on `ori-test`, the
  number papers report; CIFAR-100 and ImageNet16-120 val/test are their `x-valid` / `x-test`.
- `nats_c10_test_200, nats_c100_test_200, nats_in16_test_200`: the same test accuracies from the
  NATS-Bench `tss` release (equal to the columns above for most cells, a few points off for some).
- `c10_val_12, c10_test_12, c100_val_12, c100_test_12, in16_val_12, in16_test_12`: the same
  accuracies after the 12-epoch (low-fidelity) schedule.
- `unique_str`: NATS-Bench's isomorphism-canonical string of the cell (see `unique_str`).

A column `ops` (six digits indexing `NB201_OPS`, in edge order) may be present; it repeats `arch_str`
and is not read. Tables with fewer rows than the full 15,625 (small fixtures) load the same way,
with a warning; their missing cells raise `ArchNotFoundError` on lookup.
"""

from __future__ import annotations

import csv
import dataclasses
import operator
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from jaxnas.log import logger
from jaxnas.spaces.genotypes import NB201_ARCH_FORMAT, NB201_EDGES, NB201Genotype
from jaxnas.spaces.ops import NB201_OPS

NUM_CELLS = len(NB201_OPS) ** len(NB201_EDGES)
"""The number of cells of the NAS-Bench-201 space (15,625), the rows of a full table."""

DATASETS = {"cifar10": "c10", "cifar100": "c100", "imagenet16-120": "in16"}
"""Dataset names accepted by `column_name` (case-insensitive) and their column prefixes."""

METRICS = ("val", "test", "nats_test", "val_12", "test_12")
"""Metric names accepted by `column_name`."""

ACCURACY_COLUMNS = tuple(
    [f"{p}_{split}_200" for p in DATASETS.values() for split in ("val", "test")]
    + [f"nats_{p}_test_200" for p in DATASETS.values()]
    + [f"{p}_{split}_12" for p in DATASETS.values() for split in ("val", "test")]
)
"""The 15 float columns of the CSV, accuracies in %."""

REQUIRED_COLUMNS = ("index", "arch_str", *ACCURACY_COLUMNS, "unique_str")
"""The columns a CSV table must have (in any order)."""

_HOW_TO_GET = (
    "The table is a plain CSV of the published NAS-Bench-201 accuracies (format in the docstring "
    "of jaxnas.benchmarks.nb201). Point to an existing copy, or build one from the official "
    "NATS-Bench files with NB201Table.from_nats_bench(nats_dir).to_csv(path) (needs "
    "`pip install nats_bench` and the NATS-tss-v1_0-3ffb9-simple directory).")


class ArchNotFoundError(KeyError):
    """A well-formed arch string (or index) that is not a row of the table."""

    def __str__(self) -> str:
        return str(self.args[0])


def _arch_str_of(arch: Any) -> str:
    """The arch string of a string or of an object with an `arch_str` attribute."""
    if isinstance(arch, str):
        return arch
    arch_str = getattr(arch, "arch_str", None)
    if isinstance(arch_str, str):
        return arch_str
    raise TypeError(
        f"expected an NB201 arch string like {NB201_ARCH_FORMAT!r} or an object with an "
        f"`arch_str` "
        f"attribute, got {type(arch).__name__}: {arch!r}")


def parse_arch_str(arch: Any) -> tuple[str, ...]:
    """The six ops of an NB201 cell, in ``NB201_EDGES`` order.

    ``arch``: an arch string ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|`` or an object with an
    ``arch_str`` attribute. A malformed string raises a ValueError naming the problem.
    """
    return NB201Genotype.from_arch_str(_arch_str_of(arch)).ops


def unique_str(arch: Any) -> str:
    """NATS-Bench's canonical string of a cell: equal for isomorphic cells.

    Each node is written as the sorted '+'-join of its incoming terms: a `none` edge (or an edge
    from a node that is always zero) is '#', a `skip_connect` edge is its input's string, and
    any other op is `(input)@op`; node 0 is '0'. The string of node 3 is the result, which is the
    `unique_str` column of the table (6,466 distinct values over the 15,625 cells).
    """
    ops = parse_arch_str(arch)
    node_strs = ["0"]
    for node in (1, 2, 3):
        terms = []
        for (source, target), op in zip(NB201_EDGES, ops):
            if target != node:
                continue
            source_str = node_strs[source]
            if op == "none" or source_str == "#":
                terms.append("#")
            elif op == "skip_connect":
                terms.append(source_str)
            else:
                terms.append(f"({source_str})@{op}")
        node_strs.append("+".join(sorted(terms)))
    return node_strs[3]


def column_name(dataset: str, metric: str) -> str:
    """The CSV column of a dataset and metric, e.g. ("cifar10", "test") -> "c10_test_200".

    Args:
      dataset: "cifar10", "cifar100" or "imagenet16-120" (case-insensitive).
      metric: "val" or "test" (200 epochs), "nats_test" (NATS-Bench's 200-epoch test value),
        "val_12" or "test_12" (12 epochs).
    """
    prefix = DATASETS.get(dataset.lower()) if isinstance(dataset, str) else None
    if prefix is None:
        raise ValueError(f"unknown dataset {dataset!r}; use one of {tuple(DATASETS)}")
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; use one of {METRICS}")
    if metric == "nats_test":
        return f"nats_{prefix}_test_200"
    split, _, epochs = metric.partition("_")
    return f"{prefix}_{split}_{epochs or '200'}"


@dataclasses.dataclass(frozen=True)
class NB201Result:
    """The published numbers of one NB201 cell; accuracies in %, fields named as CSV columns."""

    index: int
    arch_str: str
    c10_val_200: float
    c10_test_200: float
    c100_val_200: float
    c100_test_200: float
    in16_val_200: float
    in16_test_200: float
    nats_c10_test_200: float
    nats_c100_test_200: float
    nats_in16_test_200: float
    c10_val_12: float
    c10_test_12: float
    c100_val_12: float
    c100_test_12: float
    in16_val_12: float
    in16_test_12: float
    unique_str: str

    def accuracy(self, dataset: str = "cifar10", metric: str = "test") -> float:
        """The accuracy for a dataset and metric (names as in `column_name`)."""
        return getattr(self, column_name(dataset, metric))


class NB201Table:
    """All rows of an NB201 accuracy table, held as compact numpy arrays.

    Attributes:
      indices: int32 array (n,), the NB201 index of each row.
      arch_strs: tuple of n arch strings.
      unique_strs: tuple of n canonical strings.
      accuracies: float32 array (n, 15), columns in `ACCURACY_COLUMNS` order.
      source: the CSV file the table was loaded from (a Path), or None.
    """

    def __init__(self, indices: Sequence[int], arch_strs: Sequence[str],
                 unique_strs: Sequence[str], accuracies: np.ndarray):
        self.indices = np.asarray(indices, dtype=np.int32)
        self.arch_strs = tuple(arch_strs)
        self.unique_strs = tuple(unique_strs)
        self.accuracies = np.asarray(accuracies, dtype=np.float32)
        self.source: Path | None = None
        n = len(self.arch_strs)
        if n == 0:
            raise ValueError("an NB201Table needs at least one row; got none")
        if (self.indices.shape != (n,) or len(self.unique_strs) != n
                or self.accuracies.shape != (n, len(ACCURACY_COLUMNS))):
            raise ValueError(
                f"inconsistent table shapes: {n} arch strings, indices {self.indices.shape}, "
                f"{len(self.unique_strs)} unique strings, accuracies {self.accuracies.shape} "
                f"(expected ({n}, {len(ACCURACY_COLUMNS)}))")
        self._row_of_arch = {}
        for row, arch_str in enumerate(self.arch_strs):
            try:
                parse_arch_str(arch_str)
            except ValueError as e:
                raise ValueError(f"row {row} (0-based): {e}") from None
            if arch_str in self._row_of_arch:
                raise ValueError(f"arch string {arch_str!r} appears twice, in rows "
                                 f"{self._row_of_arch[arch_str]} and {row} (0-based)")
            self._row_of_arch[arch_str] = row
        bad_rows = np.flatnonzero(~np.all(np.isfinite(self.accuracies), axis=1))
        if bad_rows.size:
            raise ValueError(f"rows {bad_rows[:10].tolist()} (0-based) have NaN or infinite "
                             f"accuracies; every row needs all of {ACCURACY_COLUMNS}")
        self._row_of_index = {int(index): row for row, index in enumerate(self.indices)}
        if len(self._row_of_index) != n:
            values, counts = np.unique(self.indices, return_counts=True)
            raise ValueError(f"duplicate NB201 indices in the table: {values[counts > 1][:10]}")
        self.indices.flags.writeable = False
        self.accuracies.flags.writeable = False

    @classmethod
    def load(cls, path: str | Path) -> "NB201Table":
        """Reads a CSV table in the format of the module docstring."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no NB201 table at {str(path)!r}. {_HOW_TO_GET}")
        with path.open(newline="", encoding="utf-8") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            if header is None:
                raise ValueError(f"{path} is empty; expected a header line with the columns "
                                 f"{REQUIRED_COLUMNS}")
            missing = [name for name in REQUIRED_COLUMNS if name not in header]
            if missing:
                raise ValueError(f"{path} lacks the column(s) {missing}. {_HOW_TO_GET}")
            position = {name: header.index(name) for name in REQUIRED_COLUMNS}
            index_at, arch_at, unique_at = (
                position[k] for k in ("index", "arch_str", "unique_str"))
            accuracy_at = operator.itemgetter(*(position[k] for k in ACCURACY_COLUMNS))
            indices, arch_strs, unique_strs, accuracies = [], [], [], []
            for line, fields in enumerate(reader, start=2):
                if len(fields) != len(header):
                    raise ValueError(f"{path}, line {line}: {len(fields)} fields, the header has "
                                     f"{len(header)}")
                try:
                    indices.append(int(fields[index_at]))
                    accuracies.append([float(v) for v in accuracy_at(fields)])
                except ValueError as e:
                    raise ValueError(f"{path}, line {line}: {e}; `index` must be an integer "
                                     f"and the accuracy columns numbers") from None
                arch_strs.append(fields[arch_at])
                unique_strs.append(fields[unique_at])
        try:
            table = cls(indices, arch_strs, unique_strs, np.array(accuracies, dtype=np.float32))
        except ValueError as e:
            raise ValueError(f"{path}: {e}") from None
        table.source = path
        if len(table) < NUM_CELLS:
            logger.warning("The NB201 table %s has %d rows, not the %d cells of NAS-Bench-201: "
                           "the cells it lacks cannot be looked up (load the full table to score "
                           "every cell).", path, len(table), NUM_CELLS)
        return table

    @classmethod
    def from_nats_bench(cls, path: str | Path) -> "NB201Table":
        """Builds the table from the official NATS-Bench topology files (slow: minutes).

        Args:
          path: the `NATS-tss-v1_0-3ffb9-simple` directory of NATS-Bench.

        The 200-epoch and 12-epoch values are the NATS-Bench means over seeds, so here the
        `c*_test_200` columns equal the `nats_*` ones (the CSV's `c*_test_200` come from the
        original NAS-Bench-201 release and differ for some cells).
        """
        try:
            import nats_bench
        except ImportError:
            raise ImportError(
                "NB201Table.from_nats_bench needs the `nats_bench` package: "
                "`pip install nats_bench`, then download the NATS-Bench topology files "
                "(NATS-tss-v1_0-3ffb9-simple) as described at "
                "https://github.com/D-X-Y/NATS-Bench. Or use the CSV table instead: "
                "NB201Table.load('nb201_merged.csv').") from None
        if not Path(path).is_dir():
            raise FileNotFoundError(
                f"no NATS-Bench topology directory at {str(path)!r}; download and unpack "
                f"NATS-tss-v1_0-3ffb9-simple (https://github.com/D-X-Y/NATS-Bench) and pass its "
                f"path, or use the CSV table with NB201Table.load")
        api = nats_bench.create(str(path), "tss", fast_mode=True, verbose=False)
        arch_strs = [api.arch(i) for i in range(len(api))]
        rows = []
        for i in range(len(api)):
            values = {}
            for dataset, prefix in DATASETS.items():
                for epochs in ("200", "12"):
                    values[f"{prefix}_val_{epochs}"], values[f"{prefix}_test_{epochs}"] = (
                        _nats_val_test(api, i, dataset, epochs))
                values[f"nats_{prefix}_test_200"] = values[f"{prefix}_test_200"]
            rows.append([values[name] for name in ACCURACY_COLUMNS])
        return cls(range(len(api)), arch_strs, [unique_str(a) for a in arch_strs],
                   np.array(rows, dtype=np.float32))

    def to_csv(self, path: str | Path) -> None:
        """Writes the table in the CSV format that `load` reads (with the `ops` column)."""
        with Path(path).open("w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["index", "arch_str", "ops", *ACCURACY_COLUMNS, "unique_str"])
            for index, arch_str, unique, values in zip(
                    self.indices.tolist(), self.arch_strs, self.unique_strs,
                    self.accuracies.tolist()):
                ops = "".join(str(NB201_OPS.index(op)) for op in parse_arch_str(arch_str))
                writer.writerow([index, arch_str, ops, *(f"{v:.6f}" for v in values), unique])

    def __len__(self) -> int:
        return len(self.arch_strs)

    def __contains__(self, arch: Any) -> bool:
        return _arch_str_of(arch) in self._row_of_arch

    @property
    def name(self) -> str:
        """``NB201 table <source> (<n> of 15625 cells)``, for messages."""
        where = f" {self.source}" if self.source is not None else ""
        return f"NB201 table{where} ({len(self)} of {NUM_CELLS} cells)"

    def _row(self, arch: Any) -> int:
        if isinstance(arch, (int, np.integer)) and not isinstance(arch, bool):
            row = self._row_of_index.get(int(arch))
            if row is None:
                raise ArchNotFoundError(f"NB201 index {arch} is not in the {self.name}")
            return row
        arch_str = _arch_str_of(arch)
        row = self._row_of_arch.get(arch_str)
        if row is None:
            parse_arch_str(arch_str)
            partial = (" The table is partial: load the full table to look up every cell."
                       if len(self) < NUM_CELLS else "")
            raise ArchNotFoundError(
                f"arch string {arch_str!r} is well formed but not in this table, the "
                f"{self.name}. Lookups "
                f"match exactly, in the form {NB201_ARCH_FORMAT!r}; an isomorphic cell written "
                f"differently is a different row (compare `unique_str`).{partial}")
        return row

    def query(self, arch: Any) -> NB201Result:
        """The published numbers of a cell.

        Args:
          arch: an arch string, an object with an `arch_str` attribute (a genotype), or an
            NB201 index (int).

        Raises:
          ArchNotFoundError (a KeyError): the cell is not a row of the table.
          ValueError: the arch string is malformed.
        """
        row = self._row(arch)
        values = dict(zip(ACCURACY_COLUMNS, self.accuracies[row].tolist()))
        return NB201Result(index=int(self.indices[row]), arch_str=self.arch_strs[row],
                           unique_str=self.unique_strs[row], **values)

    def index_of(self, arch: Any) -> int:
        """The NB201 index of a cell given by arch string or genotype."""
        return int(self.indices[self._row(arch)])

    def column(self, name: str) -> np.ndarray:
        """A numeric column over all rows, in row order: "index" (int32, (n,)) or one of
        `ACCURACY_COLUMNS` (float32, (n,)). Read-only."""
        if name == "index":
            return self.indices
        if name not in ACCURACY_COLUMNS:
            raise ValueError(f"unknown column {name!r}; use 'index' or one of {ACCURACY_COLUMNS} "
                             f"(or column_name(dataset, metric))")
        return self.accuracies[:, ACCURACY_COLUMNS.index(name)]

    def best(self, dataset: str = "cifar10", metric: str = "test") -> NB201Result:
        """The row with the highest accuracy for a dataset and metric (first row on ties)."""
        return self.query(int(self.indices[np.argmax(self.column(column_name(dataset, metric)))]))


def _nats_val_test(api: Any, index: int, dataset: str, epochs: str) -> tuple[float, float]:
    """Seed-averaged (val, test) accuracy of one cell from a NATS-Bench topology API."""
    if dataset == "cifar10":
        val = api.get_more_info(index, "cifar10-valid", hp=epochs, is_random=False)
        test = api.get_more_info(index, "cifar10", hp=epochs, is_random=False)
        return val["valid-accuracy"], test["test-accuracy"]
    nats_name = "ImageNet16-120" if dataset == "imagenet16-120" else dataset
    info = api.get_more_info(index, nats_name, hp=epochs, is_random=False)
    return info["valid-accuracy"], info["test-accuracy"]
