"""What a run writes while it goes: ``metrics.jsonl`` (one JSON object per logged step),
TensorBoard event files, and a progress line on the log."""

import json
import math
import os
import time

import numpy as np

from jaxnas.distributed import is_chief
from jaxnas.files import read_jsonl
from jaxnas.log import logger


class MetricsWriter:
    """Appends records to ``WORKDIR/metrics.jsonl`` and scalars to TensorBoard in ``WORKDIR``.

    On resume, records after the restored step are dropped first (those steps run again), and so
    is a last line cut short by a crash (with a warning); a damaged line before it is an error
    naming the line. In a multi-process run only process 0 writes; on the others the writer
    does nothing.
    """

    def __init__(self, workdir: str, resume_step: int = 0):
        self.path = os.path.join(workdir, "metrics.jsonl")
        self.tensorboard = None
        if not is_chief():
            return
        if os.path.exists(self.path):
            entries, torn = read_jsonl(self.path)
            if torn:
                logger.warning("The last line of %s is cut short, a write interrupted by a "
                               "crash; dropped it, its step runs again.", self.path)
            kept = [line for line, record in entries if record.get("step", 0) <= resume_step]
            tmp = self.path + ".tmp"
            with open(tmp, "w", encoding="utf-8") as f:
                f.writelines(kept)
            os.replace(tmp, self.path)
        from tensorboardX import SummaryWriter

        self.tensorboard = SummaryWriter(logdir=workdir, flush_secs=30)

    def write(self, step: int, scalars: dict, **extra) -> None:
        """``scalars``: name -> number (to both sinks); ``extra``: JSON-able, jsonl only."""
        if self.tensorboard is None:
            return
        record = {"step": int(step), **{k: _number(v) for k, v in scalars.items()}, **extra}
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
        for name, value in scalars.items():
            self.tensorboard.add_scalar(name, float(np.asarray(value)), int(step))

    def close(self) -> None:
        if self.tensorboard is not None:
            self.tensorboard.close()


def _number(value):
    value = float(np.asarray(value))
    return value if math.isfinite(value) else str(value)


class Progress:
    """Formats ``step 120/1000 | epoch 3/50 | ... | 12.3 steps/s | ETA 1m12s`` lines."""

    def __init__(self, total_steps: int, steps_per_epoch: int, epochs: int, start_step: int):
        self.total, self.per_epoch, self.epochs = total_steps, steps_per_epoch, epochs
        self.last_step, self.last_time = start_step, time.perf_counter()

    def line(self, step: int, fields: dict) -> str:
        now = time.perf_counter()
        rate = (step - self.last_step) / max(now - self.last_time, 1e-9)
        self.last_step, self.last_time = step, now
        eta = (self.total - step) / rate if rate > 0 else float("inf")
        parts = [f"step {step}/{self.total}",
                 f"epoch {step / self.per_epoch:.2f}/{self.epochs}"]
        parts += [f"{k} {_format(v)}" for k, v in fields.items()]
        parts += [f"{rate:.2f} steps/s", f"ETA {format_duration(eta)}"]
        line = " | ".join(parts)
        logger.info(line)
        return line


def _format(value):
    if isinstance(value, str):
        return value
    value = float(value)
    return f"{value:.4g}"


def format_duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    seconds = int(round(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m" if h else (f"{m}m{s:02d}s" if m else f"{s}s")
