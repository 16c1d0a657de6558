"""Writing files so that a reader never sees half of one: atomic JSON."""

import json
import os


def write_json(path: str | os.PathLike, data, **dump_options) -> None:
    """Writes ``data`` to ``path`` as JSON (``json.dump`` options, indent 2 by default) through a
    temporary file in the same folder and ``os.replace``: ``path`` is old or new, never partial."""
    tmp = f"{os.fspath(path)}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, **{"indent": 2, **dump_options})
    os.replace(tmp, path)
