"""The markdown tables the benchmark scripts print."""

from typing import Sequence


def markdown_table(header: Sequence[str], rows: Sequence[Sequence]) -> str:
    """A markdown table: ``header`` [k] column titles, ``rows`` [n][k] cells (printed with
    ``str``)."""
    lines = [header, ["---"] * len(header), *rows]
    return "\n".join("| " + " | ".join(str(cell) for cell in line) + " |" for line in lines)


def megabytes(count: float | None) -> str:
    """A byte count in MB (2**20 bytes), or n/a when XLA gave none."""
    return f"{count / 2**20:.0f}" if count is not None else "n/a"


def gigabytes(count: float | None, digits: int = 2) -> str:
    """A byte count in GB (1e9 bytes), or n/a when XLA gave none (or zero)."""
    return f"{count / 1e9:.{digits}f}" if count else "n/a"
