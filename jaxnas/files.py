"""Files a crash cannot leave half-written for a reader: atomic JSON, and JSON-lines logs whose
last line a crash may have cut short."""

import json
import os


def write_json(path: str | os.PathLike, data, **dump_options) -> None:
    """Writes ``data`` to ``path`` as JSON (``json.dump`` options, indent 2 by default) through a
    temporary file in the same folder and ``os.replace``: ``path`` is old or new, never partial."""
    _write_text(path, json.dumps(data, **{"indent": 2, **dump_options}))


def write_jsonl(path: str | os.PathLike, records) -> None:
    """Writes ``records`` (JSON objects) to ``path`` as JSON lines, all at once and atomically as
    ``write_json`` does (for a log known in full when it is written)."""
    _write_text(path, "".join(json.dumps(record) + "\n" for record in records))


def _write_text(path: str | os.PathLike, text: str) -> None:
    tmp = f"{os.fspath(path)}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def read_jsonl(path: str | os.PathLike) -> tuple[list[tuple[str, dict]], bool]:
    """``([(line, record), ...], torn)``: every non-empty line of a JSON-lines file (ending in a
    newline) with its object, and whether a last line cut short (no newline after it: a write
    interrupted by a crash) was left out. Any other line that is not a JSON object raises a
    ValueError naming it."""
    path = os.fspath(path)
    with open(path, encoding="utf-8") as f:
        lines = [line for line in f if line.strip()]
    entries, torn = [], False
    for number, line in enumerate(lines, start=1):
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            if number == len(lines) and not line.endswith("\n"):  # no newline: cut short
                torn = True
                continue
            raise ValueError(f"Line {number} of {path!r} is not JSON ({e}): {line[:80]!r}; fix "
                             "or remove it.") from None
        if not isinstance(record, dict):
            raise ValueError(f"Line {number} of {path!r} is not a JSON object: {line[:80]!r}; "
                             "fix or remove it.")
        entries.append((line if line.endswith("\n") else line + "\n", record))
    return entries, torn
