"""Streaming image data for sets that do not fit in memory: grain over random-access ArrayRecord
sources.

``open_streaming(spec, data_dir, image_size)`` opens the train and test splits of

- ``tfds:NAME``: a tfds dataset prepared as ArrayRecord (``tfds build NAME
  --file_format=array_record``), through ``tfds.data_source``;
- ``arrayrecord:DIR``: a tfds dataset directory: ``features.json``, ``dataset_info.json`` and
  the ``NAME-SPLIT.array_record-XXXXX-of-YYYYY`` shards, as ``tfds build`` writes it (in
  ``DATA_DIR/NAME/VERSION``) or ``jaxnas.data.write_arrayrecord`` writes one's own images.

Nothing is held in memory but the batches in flight. Records are read at random (no shuffle buffer),
so batch ``j`` of a ``BatchStream`` holds the same examples as in the in-memory pipeline, and each
process reads only its rows of it (``local_rows``). ``loader`` reads the batches (``StepReader``,
``EvalReader``) in grain's threads (``threads``) or worker processes (``workers``), where records
are decoded and fitted to the run's image size; augmentation (crop, flip, cutout) happens on the
device, in the step, as for the in-memory path. The loader's element ``j`` is batch ``j``, whatever
the number of processes, and its iterator's state (``get_state``) is saved in each checkpoint.
"""

import dataclasses
import os

import numpy as np

from jaxnas.data.sources import KNOWN_STATS, base_name, check_image_features, tfds_split

PIPELINES = ("memory", "grain")
_STATS_RECORDS = 256  # records the per-channel mean and std are estimated from, when not known


def check_pipeline(name: str) -> None:
    """A clear error unless ``name`` is one of ``PIPELINES``."""
    if name not in PIPELINES:
        raise ValueError(f"Unknown config.data_pipeline {name!r}; use 'memory' (the whole set "
                         "in host memory: digits, npz, small tfds sets) or 'grain' (streamed "
                         "from tfds:NAME or arrayrecord:DIR, for sets that do not fit).")


class RecordSplit:
    """One split of a random-access source, read as fixed-size images: ``read(indices)`` ->
    ``{"image": uint8 [*indices.shape, H, W, C], "label": int32 [*indices.shape]}``.

    A record whose image is not ``image_shape`` [H, W, C] is resized (shorter side to the
    longer of H and W, bilinear) and centre-cropped to it when ``resize``; otherwise it is an
    error naming the record."""

    def __init__(self, source, image_shape, resize: bool, what: str):
        self.source, self.image_shape, self.resize, self.what = source, image_shape, resize, what

    def __len__(self) -> int:
        return len(self.source)

    def read(self, indices) -> dict:
        indices = np.asarray(indices)
        images = np.empty((indices.size,) + self.image_shape, np.uint8)
        labels = np.empty(indices.size, np.int32)
        for k, i in enumerate(indices.ravel()):
            record = self.source[int(i)]
            images[k] = self._fit(np.asarray(record["image"]), int(i))
            labels[k] = record["label"]
        return {"image": images.reshape(indices.shape + self.image_shape),
                "label": labels.reshape(indices.shape)}

    def _fit(self, image, index: int) -> np.ndarray:
        """``image`` [h, w] or [h, w, c] as uint8 ``image_shape``."""
        image = image[..., None] if image.ndim == 2 else image
        height, width, channels = self.image_shape
        if image.ndim != 3 or image.shape[-1] != channels:
            raise ValueError(f"{self.what}: record {index} has an image of shape {image.shape}, "
                             f"not [H, W, {channels}] like the others.")
        if image.shape == self.image_shape:
            return image
        if not self.resize:
            raise ValueError(f"{self.what}: record {index} is {image.shape[0]}x{image.shape[1]}, "
                             f"not {height}x{width} like the first; set config.image_size to "
                             "resize every image to one size.")
        from PIL import Image

        scale = max(height, width) / min(image.shape[:2])
        size = (max(width, round(image.shape[1] * scale)),
                max(height, round(image.shape[0] * scale)))
        pixels = Image.fromarray(image.squeeze(-1) if channels == 1 else image)
        pixels = np.asarray(pixels.resize(size, Image.BILINEAR)).reshape(
            size[1], size[0], channels)
        top, left = (size[1] - height) // 2, (size[0] - width) // 2
        return pixels[top:top + height, left:left + width]


@dataclasses.dataclass(frozen=True)
class StreamingDataset:
    """The train and test splits of a streamed set and what a run needs to know of it (the
    fields ``ImageDataset`` has, without the arrays)."""

    name: str
    train: RecordSplit
    test: RecordSplit
    num_classes: int
    mean: tuple[float, ...]
    std: tuple[float, ...]

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return self.train.image_shape


def open_streaming(spec: str, data_dir: str | None = None, image_size: int = 0,
                   num_classes: int = 0) -> StreamingDataset:
    """Opens ``tfds:NAME`` or ``arrayrecord:DIR`` (module docstring) for streaming.
    ``image_size``: the side every image is fitted to (0: the first training image's size,
    which every image must have). ``num_classes``: the class count when the label feature has
    none. Reads a few records: the image size, and the per-channel mean and std when
    ``KNOWN_STATS`` lacks them (from the first 256 training images)."""
    if spec.startswith("tfds:"):
        name = base_name(spec[5:])
        train, test = (tfds_split(spec[5:], split, data_dir) for split in ("train", "test"))
    elif spec.startswith("arrayrecord:"):
        name, (train, test) = _directory_splits(spec[len("arrayrecord:"):])
    else:
        raise ValueError(f"config.data_pipeline='grain' streams 'tfds:NAME' or "
                         f"'arrayrecord:DIR' (a tfds dataset directory of ArrayRecord files), "
                         f"not {spec!r}; use config.data_pipeline='memory' for it.")
    for source, split in ((train, "train"), (test, "test")):
        if not len(source):
            raise ValueError(f"The {split} split of {spec!r} is empty; each split needs at "
                             "least one image.")
    count = getattr(train.dataset_info.features["label"], "num_classes", 0) or num_classes
    if not count:
        raise ValueError(f"{spec!r} does not say how many classes it has; set "
                         "config.num_classes.")
    first = np.asarray(train[0]["image"])
    channels = first.shape[-1] if first.ndim == 3 else 1
    shape = ((image_size, image_size, channels) if image_size
             else tuple(first.shape[:2]) + (channels,))
    splits = [RecordSplit(source, shape, bool(image_size), f"{spec!r} ({split} split)")
              for source, split in ((train, "train"), (test, "test"))]
    if name in KNOWN_STATS:
        mean, std = KNOWN_STATS[name]
    else:
        sample = splits[0].read(np.arange(min(len(train), _STATS_RECORDS)))["image"]
        pixels = sample.reshape(-1, channels).astype(np.float64) / 255.0
        mean, std = tuple(pixels.mean(0)), tuple(np.maximum(pixels.std(0), 1e-3))
    return StreamingDataset(name, *splits, int(count), tuple(map(float, mean)),
                            tuple(map(float, std)))


def _directory_splits(path: str):
    """The name and the train and test sources of the tfds dataset directory ``path``."""
    import tensorflow_datasets as tfds

    if not os.path.isfile(os.path.join(path, "features.json")):
        raise FileNotFoundError(
            f"{path!r} is not a tfds dataset directory (no features.json). Point "
            "arrayrecord:DIR at the directory `tfds build --file_format=array_record` wrote "
            "(DATA_DIR/NAME/VERSION), or write your images as one with "
            "jaxnas.data.write_arrayrecord (README, 'Streaming data').")
    builder = tfds.builder_from_directory(path)
    splits = []
    for split in ("train", "test"):
        split = split if split in builder.info.splits or split == "train" else "validation"
        try:
            source = builder.as_data_source(split=split)
        except Exception as e:  # tfds raises several types for a missing split or shard
            raise ValueError(f"Cannot read the {split} split of {path!r} ({type(e).__name__}: "
                             f"{e}); it needs a train and a test (or validation) split.") from None
        check_image_features(source, f"{path!r} ({split} split)")
        splits.append(source)
    return builder.info.name, splits


def loader(read, count: int, threads: int, workers: int):
    """A grain ``IterDataset`` of ``read(0)``, ..., ``read(count - 1)`` in order, read ahead by
    ``threads`` threads, in ``workers`` worker processes (0: in this process). Its iterator's
    ``get_state()``/``set_state()`` save and restore the position (the state's form depends on
    ``workers``)."""
    import grain

    dataset = grain.MapDataset.range(count).map(read).to_iter_dataset(
        grain.ReadOptions(num_threads=threads, prefetch_buffer_size=max(2 * threads, 1)))
    if workers:
        from absl import flags

        if not flags.FLAGS.is_parsed():  # grain's workers read absl flags; library callers
            flags.FLAGS.mark_as_parsed()  # may not have parsed any
        dataset = dataset.mp_prefetch(grain.MultiprocessingOptions(num_workers=workers))
    return dataset
