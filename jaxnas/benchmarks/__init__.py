"""Benchmarks: look up the published accuracy of an architecture."""

from jaxnas.benchmarks.lookup import NB201Lookup, open_lookup
from jaxnas.benchmarks.nb201 import (
    ACCURACY_COLUMNS,
    ArchNotFoundError,
    NB201Result,
    NB201Table,
    column_name,
    parse_arch_str,
    unique_str,
)

__all__ = [
    "ACCURACY_COLUMNS",
    "ArchNotFoundError",
    "NB201Lookup",
    "NB201Result",
    "NB201Table",
    "column_name",
    "parse_arch_str",
    "open_lookup",
    "unique_str",
]
