"""The ``jaxnas`` logger: progress and results on stderr, independent of absl's verbosity (the
experiment scripts set absl to WARNING, which silences orbax's per-checkpoint chatter)."""

import logging
import sys

logger = logging.getLogger("jaxnas")
if not logger.handlers:
    _handler = logging.StreamHandler(sys.stderr)
    _handler.setFormatter(logging.Formatter("%(asctime)s jaxnas] %(message)s", "%H:%M:%S"))
    logger.addHandler(_handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
