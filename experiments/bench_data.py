"""Images per second of the two data pipelines on this machine: the in-memory arrays against grain
streaming from ArrayRecord.

    python -m experiments.bench_data --npz=../shared/data/cifar10_subset/cifar10_subset.npz \
        --batch=128 --steps=30 --grain=1:0,2:0,4:0,1:2

Writes the training images of --npz (without it, --images random 32x32 ones) as an ArrayRecord
directory (PNG-encoded, as tfds stores images) in a temporary directory, then reads --steps
batches of --batch the way a one-process run does (``StepReader`` over a ``BatchStream``): from the
arrays in memory, and through ``jaxnas.data.loader`` for each THREADS:WORKERS of --grain, the
images fitted to --image_size (0: kept as they are). Host side only: both pipelines feed the same
device step. Prints one row per pipeline: the first batch's latency (the loader's start-up) and
the images per second over the batches after it.
"""

import os
import tempfile
import time

import numpy as np
from absl import app, flags

from jaxnas.data import (BatchStream, StepReader, load_dataset, loader, open_streaming,
                         write_arrayrecord)
from jaxnas.data.sources import ArraySplit

_NPZ = flags.DEFINE_string("npz", "", "npz set (x_train, y_train, ...) whose training images "
                           "are read; empty: --images random 32x32 images.")
_IMAGES = flags.DEFINE_integer("images", 5000, "Random images, without --npz.")
_BATCH = flags.DEFINE_integer("batch", 128, "Images per batch.")
_STEPS = flags.DEFINE_integer("steps", 30, "Batches timed after the first.")
_GRAIN = flags.DEFINE_list("grain", ["1:0", "2:0", "4:0", "1:2"],
                           "grain settings to time, each THREADS:WORKERS.")
_IMAGE_SIZE = flags.DEFINE_integer("image_size", 0, "Side streamed images are fitted to (0: "
                                   "their own size).")


def _arrays():
    """Training images uint8 [N, H, W, C] and labels [N] of --npz, or random ones."""
    if _NPZ.value:
        data = load_dataset(f"npz:{_NPZ.value}")
        return data.x_train, data.y_train
    rng = np.random.default_rng(0)
    return (rng.integers(0, 256, (_IMAGES.value, 32, 32, 3), dtype=np.uint8),
            rng.integers(0, 10, _IMAGES.value).astype(np.int32))


def _time(batches) -> tuple[float, float]:
    """(seconds to the first batch, images per second over the next --steps)."""
    start = time.perf_counter()
    next(batches)
    first = time.perf_counter()
    for _ in range(_STEPS.value):
        next(batches)
    return first - start, _STEPS.value * _BATCH.value / (time.perf_counter() - first)


def main(argv):
    del argv
    images, labels = _arrays()
    steps = _STEPS.value + 1
    stream = {"train": BatchStream(np.arange(len(images)), _BATCH.value, seed=0)}
    rows = slice(0, _BATCH.value)
    with tempfile.TemporaryDirectory() as directory:
        start = time.perf_counter()
        num_classes = int(labels.max()) + 1
        write_arrayrecord(directory, "bench", {"train": zip(images, labels),
                                               "test": zip(images[:1], labels[:1])}, num_classes)
        size = sum(os.path.getsize(os.path.join(directory, f)) for f in os.listdir(directory))
        print(f"{len(images)} images {images.shape[1:]}: ArrayRecord {size / 2**20:.1f} MiB "
              f"written in {time.perf_counter() - start:.1f} s; batch {_BATCH.value}, "
              f"{_STEPS.value} batches timed after the first, {os.cpu_count()} CPUs")
        in_memory = StepReader(ArraySplit(images, labels), stream, {"train": 1}, rows)
        rows_out = [("memory", *_time(map(in_memory, range(steps))))]
        streamed = open_streaming(f"arrayrecord:{directory}", image_size=_IMAGE_SIZE.value)
        read = StepReader(streamed.train, stream, {"train": 1}, rows)
        for setting in _GRAIN.value:
            threads, workers = map(int, setting.split(":"))
            batches = iter(loader(read, steps, threads, workers))
            rows_out.append((f"grain threads={threads} workers={workers}", *_time(batches)))
            batches.close()
    print(f"{'pipeline':<30} {'first batch (s)':>16} {'images/s':>10}")
    for name, first, rate in rows_out:
        print(f"{name:<30} {first:>16.3f} {rate:>10,.0f}")


if __name__ == "__main__":
    app.run(main)
