"""Benchmark lookups of a search's genotype, behind one small interface the engine calls at
every log step and at the end: ``scores(genotype) -> {metric: value}``, ``record(genotype) ->``
the JSON for ``genotype.json``, ``describe(genotype) ->`` a log line, ``headline`` the metric for
the progress line."""

import dataclasses

from jaxnas.benchmarks.nb201 import NB201Table


@dataclasses.dataclass(frozen=True)
class NB201Lookup:
    """The NAS-Bench-201 accuracies (200 epochs) of an NB201 genotype."""

    table: NB201Table
    headline = "nb201/c10_test"

    def scores(self, genotype) -> dict:
        result = self.table.query(genotype)
        return {"nb201/c10_test": result.c10_test_200, "nb201/c100_test": result.c100_test_200,
                "nb201/in16_test": result.in16_test_200}

    def record(self, genotype) -> dict:
        return {"nb201": dataclasses.asdict(self.table.query(genotype))}

    def describe(self, genotype) -> str:
        result = self.table.query(genotype)
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
