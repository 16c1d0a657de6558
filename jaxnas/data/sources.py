"""Image classification datasets as in-memory uint8 arrays.

``load_dataset(spec)`` understands three kinds of ``spec`` (the ``config.dataset`` field):

- ``digits``: scikit-learn's bundled 8x8 handwritten digits (1,797 images, 10 classes), the
  embedded default that needs no download; a fixed split keeps 360 images for test.
- ``npz:PATH``: a NumPy archive with ``x_train, y_train, x_test, y_test`` (images uint8 NHWC).
- ``tfds:NAME``: any TensorFlow Datasets image classification set with ``image`` and ``label``
  features (``cifar10``, ``cifar100``, ``mnist``, ...), read through ``tfds.data_source``
  (no TensorFlow needed) from ``data_dir``.
"""

import dataclasses
import os

import numpy as np

# Per-channel mean/std in [0, 1] units, as the reference implementations normalize.
KNOWN_STATS = {
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
}


@dataclasses.dataclass(frozen=True)
class ImageDataset:
    """x_*: uint8 [N, H, W, C]; y_*: int32 [N]; mean/std: per channel, in [0, 1] units."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    mean: tuple[float, ...]
    std: tuple[float, ...]

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.x_train.shape[1:])


def load_dataset(spec: str, data_dir: str | None = None) -> ImageDataset:
    """Loads ``digits``, ``npz:PATH`` or ``tfds:NAME`` (see the module docstring)."""
    if spec == "digits":
        return _from_arrays("digits", *_digits())
    if spec.startswith("npz:"):
        path = spec[4:]
        return _from_arrays(os.path.splitext(os.path.basename(path))[0], *_npz(path))
    if spec.startswith("tfds:"):
        name = spec[5:]
        *arrays, num_classes = _tfds(name, data_dir)
        return _from_arrays(name.split("/")[0].split(":")[0], *arrays, num_classes=num_classes)
    raise ValueError(
        f"Unknown dataset {spec!r}. Use 'digits' (embedded, no download), 'npz:PATH' (arrays "
        "x_train, y_train, x_test, y_test, images uint8 NHWC) or 'tfds:NAME' (e.g. tfds:cifar10).")


def _from_arrays(name, x_train, y_train, x_test, y_test, num_classes=None) -> ImageDataset:
    """Checks and wraps the arrays; ``num_classes`` defaults to the largest label + 1."""
    for split, x, y in (("train", x_train, y_train), ("test", x_test, y_test)):
        if x.ndim == 3:
            x = x[..., None]
        if x.ndim != 4 or x.dtype != np.uint8:
            raise ValueError(f"Dataset {name!r}: x_{split} must be uint8 images [N, H, W, C], got "
                             f"dtype {x.dtype} and shape {x.shape}.")
        if len(x) != len(y):
            raise ValueError(f"Dataset {name!r}: x_{split} has {len(x)} images but y_{split} has "
                             f"{len(y)} labels.")
        if split == "train":
            x_train = x
        else:
            x_test = x
    if x_train.shape[1:] != x_test.shape[1:]:
        raise ValueError(f"Dataset {name!r}: train images {x_train.shape[1:]} and test images "
                         f"{x_test.shape[1:]} differ in shape.")
    y_train, y_test = np.asarray(y_train, np.int32).ravel(), np.asarray(y_test, np.int32).ravel()
    largest = int(max(y_train.max(), y_test.max()))
    num_classes = num_classes or largest + 1
    if min(y_train.min(), y_test.min()) < 0 or largest >= num_classes:
        raise ValueError(f"Dataset {name!r}: labels must be in 0..{num_classes - 1}.")
    if name in KNOWN_STATS:
        mean, std = KNOWN_STATS[name]
    else:
        pixels = x_train.reshape(-1, x_train.shape[-1]).astype(np.float64) / 255.0
        mean, std = tuple(pixels.mean(0)), tuple(np.maximum(pixels.std(0), 1e-3))
    return ImageDataset(name, x_train, y_train, x_test, y_test, num_classes,
                        tuple(map(float, mean)), tuple(map(float, std)))


def _digits():
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = np.round(digits.images * (255.0 / 16.0)).astype(np.uint8)
    order = np.random.default_rng(0).permutation(len(images))
    test, train = order[:360], order[360:]
    return images[train], digits.target[train], images[test], digits.target[test]


def _npz(path):
    if not os.path.exists(path):
        raise FileNotFoundError(
            f"No npz dataset at {path!r}. Give the path of a .npz file with arrays x_train, "
            "y_train, x_test, y_test (images uint8 NHWC), or use --config.dataset=digits.")
    with np.load(path) as data:
        missing = [k for k in ("x_train", "y_train", "x_test", "y_test") if k not in data]
        if missing:
            raise ValueError(f"The npz dataset {path!r} lacks the arrays {missing}; it has "
                             f"{sorted(data.files)}.")
        return data["x_train"], data["y_train"], data["x_test"], data["y_test"]


def _tfds(name, data_dir):
    import tensorflow_datasets as tfds

    def open_split(split):
        try:
            return tfds.data_source(name, split=split, data_dir=data_dir, download=False)
        except tfds.core.registered.DatasetNotFoundError:
            raise ValueError(f"TensorFlow Datasets has no dataset {name!r}; see "
                             "https://www.tensorflow.org/datasets/catalog.") from None
        except ValueError as e:
            if split == "test" and "split" in str(e).lower():
                return open_split("validation")  # e.g. imagenet2012 has no test split
            raise
        except Exception as e:  # not prepared: tfds raises several types for this
            raise FileNotFoundError(
                f"tfds dataset {name!r} is not prepared for random access in "
                f"{data_dir or '~/tensorflow_datasets'} ({type(e).__name__}). Prepare it once "
                f"with `tfds build {name} --file_format=array_record --data_dir=DIR` (needs "
                "internet and TensorFlow) and pass --config.data_dir=DIR, or use "
                "--config.dataset=npz:PATH or --config.dataset=digits.") from None

    arrays, num_classes = [], None
    for split in ("train", "test"):
        source = open_split(split)
        first = source[0] if len(source) else {}
        if "image" not in first or "label" not in first:
            raise ValueError(f"tfds dataset {name!r} ({split} split) is not an image "
                             "classification set with 'image' and 'label' features.")
        num_classes = source.dataset_info.features["label"].num_classes
        records = [source[i] for i in range(len(source))]
        arrays += [np.stack([r["image"] for r in records]).astype(np.uint8),
                   np.asarray([r["label"] for r in records])]
    return arrays + [num_classes]
