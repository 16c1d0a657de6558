"""Benchmark lookups of a search's genotype, behind one small interface the engine calls at
every log step and at the end: ``scores(genotype) -> {metric: value}``, ``record(genotype) ->``
the JSON for ``genotype.json``, ``describe(genotype) ->`` a log line, ``headline`` the metric for
the progress line.

A cell missing from a partial table does not stop a search: its scores are NaN (written as
``"nan"`` in ``metrics.jsonl``), its record is empty, and one warning per cell says so."""

import dataclasses

from jaxnas.benchmarks.nb201 import ArchNotFoundError, NB201Result, NB201Table
from jaxnas.log import logger

_SCORES = {"nb201/c10_test": "c10_test_200", "nb201/c100_test": "c100_test_200",
           "nb201/in16_test": "in16_test_200"}  # metric -> NB201Result field


@dataclasses.dataclass(frozen=True)
class NB201Lookup:
    """The NAS-Bench-201 accuracies (200 epochs) of an NB201 genotype."""

    table: NB201Table
    headline = "nb201/c10_test"
    _warned: set = dataclasses.field(default_factory=set, init=False, repr=False, compare=False)

    def _query(self, genotype) -> NB201Result | None:
        """The table's row of ``genotype``, or None (warning once per cell) if it lacks it."""
        try:
            return self.table.query(genotype)
        except ArchNotFoundError:
            if genotype.arch_str not in self._warned:
                self._warned.add(genotype.arch_str)
                logger.warning("The cell %s is not in the %s: its NAS-Bench-201 scores are NaN.",
                               genotype.arch_str, self.table.name)
            return None

    def scores(self, genotype) -> dict:
        """``{metric: accuracy in %}``; NaN for every metric when the cell is not in the table."""
        result = self._query(genotype)
        return {metric: float("nan") if result is None else getattr(result, field)
                for metric, field in _SCORES.items()}

    def record(self, genotype) -> dict:
        """``{"nb201": the row}``, or {} when the cell is not in the table."""
        result = self._query(genotype)
        return {} if result is None else {"nb201": dataclasses.asdict(result)}

    def describe(self, genotype) -> str:
        result = self._query(genotype)
        if result is None:
            return f"NAS-Bench-201 of {genotype.arch_str}: not in the {self.table.name}."
        return (f"NAS-Bench-201 of {genotype.arch_str}: CIFAR-10 test {result.c10_test_200:.2f}, "
                f"CIFAR-100 test {result.c100_test_200:.2f}, ImageNet16-120 test "
                f"{result.in16_test_200:.2f}.")


def open_lookup(nb201_table: str, space):
    """The lookup a search of ``space`` asked for (``config.nb201_table``), or None."""
    if not nb201_table:
        return None
    if space.name != "nb201":
        raise ValueError(f"config.nb201_table is set, but the search space is {space.name!r}; "
                         "the NAS-Bench-201 lookup needs the nb201 space.")
    return NB201Lookup(NB201Table.load(nb201_table))
