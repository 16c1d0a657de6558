"""Image classification datasets as in-memory uint8 arrays.

``load_dataset(spec, data_dir, num_classes)`` understands three kinds of ``spec`` (the
``config.dataset`` field):

- ``digits``: scikit-learn's bundled 8x8 handwritten digits (1,797 images, 10 classes), the
  embedded default that needs no download; a fixed split keeps 360 images for test.
- ``npz:PATH``: a NumPy archive with ``x_train, y_train, x_test, y_test`` (images uint8 NHWC) and
  optionally ``num_classes`` (an integer scalar); any other file is a ValueError.
- ``tfds:NAME``: any TensorFlow Datasets image classification set with ``image`` and ``label``
  features (``cifar10``, ``cifar100``, ``mnist``, ...), read through ``tfds.data_source``
  (no TensorFlow needed) from ``data_dir``.

The arrays are checked, and bad data raises a ValueError that names the array, the bad value and
its index and says what to do. Images: uint8 [N, H, W, C] (or [N, H, W], given one channel) with
C 1 or 3, at least one per split. Labels: an integer dtype (not bool), [N] or [N, 1], no negatives.

The class count comes from tfds's label feature, else the npz's ``num_classes`` array, else the
``num_classes`` argument; every label must be below such a count, and classes may be absent.
Otherwise the count is the largest label + 1, which one stray label would raise, so each class
0..largest must occur in the train split at least 5% as often as the median class there (the
median over the classes that occur in it): a rarer label, or one only in the test split, is an
error naming its count and first index (the largest such label is named; a label that occurs
once is caught where the median class occurs more than 20 times). A class that occurs in
neither split (a gap) is an error too. Pass ``num_classes`` to accept such data.
"""

import dataclasses
import os
import zipfile

import numpy as np

# Per-channel mean/std in [0, 1] units, as the reference implementations normalize.
KNOWN_STATS = {
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
    "imagenet2012": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
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

    @property
    def train(self) -> "ArraySplit":
        return ArraySplit(self.x_train, self.y_train)

    @property
    def test(self) -> "ArraySplit":
        return ArraySplit(self.x_test, self.y_test)


@dataclasses.dataclass(frozen=True)
class ArraySplit:
    """One split in memory, read like a streamed one (``streaming.RecordSplit``):
    ``read(indices)`` -> ``{"image": uint8 [*indices.shape, H, W, C], "label": int32
    [*indices.shape]}``."""

    images: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.images)

    def read(self, indices) -> dict:
        return {"image": self.images[indices], "label": self.labels[indices]}


def load_dataset(spec: str, data_dir: str | None = None, num_classes: int = 0) -> ImageDataset:
    """Loads ``digits``, ``npz:PATH`` or ``tfds:NAME``; ``num_classes`` 0 is not given (see the
    module docstring for the class count and the checks)."""
    if num_classes:
        _class_count(num_classes, "The num_classes argument (0 infers it from the labels)")
    if spec == "digits":
        name, arrays, count, source = "digits", _digits(), 0, ""
    elif spec.startswith("npz:"):
        path = spec[4:]
        name = os.path.splitext(os.path.basename(path))[0]
        source = f"the num_classes array in {path!r}"
        *arrays, count = _npz(path)
    elif spec.startswith("tfds:"):
        tfds_name = spec[5:]
        name = base_name(tfds_name)
        source = f"tfds's label feature of {tfds_name!r}"
        *arrays, count = _tfds(tfds_name, data_dir)
    else:
        raise ValueError(
            f"Unknown dataset {spec!r}. Use 'digits' (embedded, no download), 'npz:PATH' (arrays "
            "x_train, y_train, x_test, y_test, images uint8 NHWC) or 'tfds:NAME' (e.g. "
            "tfds:cifar10).")
    if not count:
        count, source = num_classes, "the num_classes argument"
    return _from_arrays(name, *arrays, num_classes=int(count), source=source)


def _from_arrays(name, x_train, y_train, x_test, y_test, num_classes=0, source="") -> ImageDataset:
    """Checks and wraps the arrays; ``num_classes`` (from ``source``), or 0 to infer it."""
    x_train, x_test = _images(name, "train", x_train), _images(name, "test", x_test)
    if x_train.shape[1:] != x_test.shape[1:]:
        raise ValueError(f"Dataset {name!r}: train images {x_train.shape[1:]} and test images "
                         f"{x_test.shape[1:]} differ in shape.")
    labels = {"train": _labels(name, "train", y_train, len(x_train)),
              "test": _labels(name, "test", y_test, len(x_test))}
    if num_classes:
        _check_known_count(name, labels, num_classes, source)
    else:
        num_classes = _inferred_count(name, labels)
    if name in KNOWN_STATS:
        mean, std = KNOWN_STATS[name]
    else:
        pixels = x_train.reshape(-1, x_train.shape[-1]).astype(np.float64) / 255.0
        mean, std = tuple(pixels.mean(0)), tuple(np.maximum(pixels.std(0), 1e-3))
    return ImageDataset(name, x_train, labels["train"].astype(np.int32), x_test,
                        labels["test"].astype(np.int32), num_classes,
                        tuple(map(float, mean)), tuple(map(float, std)))


def _images(name, split, x) -> np.ndarray:
    """``x`` as uint8 [N, H, W, C] with C 1 or 3 (a missing channel axis is added)."""
    x = np.asarray(x)
    if x.size == 0:
        raise ValueError(f"Dataset {name!r}: x_{split} is empty (shape {x.shape}); each split "
                         "needs at least one image.")
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim == 4 and x.shape[-1] not in (1, 3):
        hint = (f" Its axis 1 has {x.shape[1]}, so the images look like NCHW: transpose them "
                "with np.transpose(x, (0, 2, 3, 1))." if x.shape[1] in (1, 3) else "")
        raise ValueError(f"Dataset {name!r}: x_{split} must be NHWC images with 1 (grayscale) or "
                         f"3 (RGB) channels in the last axis, got shape {x.shape}.{hint}")
    if x.ndim != 4 or x.dtype != np.uint8:
        raise ValueError(f"Dataset {name!r}: x_{split} must be uint8 images [N, H, W, C], got "
                         f"dtype {x.dtype} and shape {x.shape}.")
    return x


def _labels(name, split, y, num_images) -> np.ndarray:
    """``y`` as 1-D non-negative integer labels, one per image ([N, 1] is raveled)."""
    y = np.asarray(y)
    what = f"Dataset {name!r}: y_{split}"
    if y.ndim == 2 and y.shape[1] == 1:
        y = y.ravel()
    if y.ndim != 1:
        hint = " For one-hot labels, store y.argmax(1)." if y.ndim == 2 else ""
        raise ValueError(f"{what} must be class indices of shape [N] (or [N, 1]), got shape "
                         f"{y.shape}.{hint}")
    if not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"{what} must be integer class indices, got dtype {y.dtype}."
                         + _integer_hint(y, f"y_{split}"))
    if len(y) != num_images:
        raise ValueError(f"Dataset {name!r}: x_{split} has {num_images} images but y_{split} has "
                         f"{len(y)} labels.")
    if (i := _first(y < 0)) is not None:
        raise ValueError(f"{what}[{i}] is {y[i]}; labels must be class indices 0, 1, 2, ... "
                         "Fix the label.")
    return y


def _integer_hint(y, array) -> str:
    """How to turn the non-integer labels ``y`` (the array named ``array``) into class indices."""
    if y.dtype == bool:
        return " For two classes, convert them with y.astype(np.int64)."
    if np.issubdtype(y.dtype, np.floating):
        if (i := _first(~np.isfinite(y) | (y != np.round(y)))) is not None:
            return f" {array}[{i}] is {y[i]}, not a whole number: store class indices 0, 1, 2, ..."
        return " They are whole numbers: convert them with y.astype(np.int64)."
    return " Store class indices 0, 1, 2, ..."


def _first(mask):
    """The first index where ``mask`` holds, or None."""
    return int(np.argmax(mask)) if mask.any() else None


def _class_count(value, what) -> int:
    """``value`` as a positive int, or a ValueError naming it as ``what``."""
    count = np.asarray(value)
    if count.ndim or not np.issubdtype(count.dtype, np.integer) or count < 1:
        raise ValueError(f"{what} must be a positive integer scalar, got {value!r}.")
    return int(count)


def _check_known_count(name, labels, num_classes, source):
    """Rejects labels >= ``num_classes`` (which comes from ``source``)."""
    for split, y in labels.items():
        if (i := _first(y >= num_classes)) is not None:
            raise ValueError(
                f"Dataset {name!r}: y_{split}[{i}] is {y[i]}, but the class count is "
                f"{num_classes} (from {source}), so labels must be in 0..{num_classes - 1}. Fix "
                "the label, or the class count if it is wrong.")


def _inferred_count(name, labels, rare=0.05) -> int:
    """The largest label + 1, unless a class occurs in the train split less than ``rare`` times
    as often as the median class there (a likely stray label) or in no split at all (a gap)."""
    y_train, y_test = labels["train"], labels["test"]
    num_classes = int(max(y_train.max(), y_test.max())) + 1
    advice = (f"If the set really has {num_classes} classes, pass num_classes={num_classes} "
              "(config.num_classes, or a num_classes array in the npz); otherwise")
    trained, counts = np.unique(y_train, return_counts=True)
    median = float(np.median(counts))
    occurring = np.union1d(trained, y_test)  # sorted, so a gap is where occurring[i] != i
    occurrences = np.zeros(len(occurring), np.int64)
    occurrences[np.searchsorted(occurring, trained)] = counts
    is_rare = occurrences < rare * median
    if is_rare.any():  # report the largest, as a stray label is most often above the others
        label, count = occurring[is_rare][-1], int(occurrences[is_rare][-1])
        where = (f"first at y_train[{_first(y_train == label)}]" if count
                 else f"but at y_test[{_first(y_test == label)}]")
        raise ValueError(
            f"Dataset {name!r}: label {label} occurs {count} time{'s' * (count != 1)} in y_train "
            f"({where}), while the median class occurs {median:g} times, so it looks like a stray "
            f"label (the class count inferred from the largest label is {num_classes}). {advice} "
            "fix the label.")
    if len(occurring) < num_classes:
        gap = _first(occurring != np.arange(len(occurring)))
        raise ValueError(
            f"Dataset {name!r}: class {gap} occurs in neither y_train nor y_test, although labels "
            f"go up to {num_classes - 1} (the inferred class count is {num_classes}). {advice} "
            "renumber the classes 0, 1, 2, ... without gaps.")
    return num_classes


def _digits():
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = np.round(digits.images * (255.0 / 16.0)).astype(np.uint8)
    order = np.random.default_rng(0).permutation(len(images))
    test, train = order[:360], order[360:]
    return images[train], digits.target[train], images[test], digits.target[test]


def _npz(path):
    """The four arrays of the archive at ``path`` and its ``num_classes`` (0 if absent)."""
    if not os.path.exists(path):
        raise FileNotFoundError(
            f"No npz dataset at {path!r}. Give the path of a .npz file with arrays x_train, "
            "y_train, x_test, y_test (images uint8 NHWC), or use --config.dataset=digits.")
    try:
        data = np.load(path, allow_pickle=False)
    except (ValueError, EOFError, zipfile.BadZipFile):  # text, pickle, empty or damaged zip
        data = None
    if not isinstance(data, np.lib.npyio.NpzFile):  # None, or a .npy file's single array
        raise ValueError(
            f"{path!r} is not an .npz archive of x_train, y_train, x_test, y_test. Write one with "
            "np.savez(path, x_train=..., y_train=..., x_test=..., y_test=...) (images uint8 "
            "NHWC), or use --config.dataset=digits.")
    with data:
        missing = [k for k in ("x_train", "y_train", "x_test", "y_test") if k not in data]
        if missing:
            raise ValueError(f"The npz dataset {path!r} lacks the arrays {missing}; it has "
                             f"{sorted(data.files)}.")
        count = (_class_count(data["num_classes"], f"The num_classes array in {path!r}")
                 if "num_classes" in data else 0)
        return data["x_train"], data["y_train"], data["x_test"], data["y_test"], count


def base_name(tfds_name: str) -> str:
    """``cifar10`` of ``cifar10:3.0.2`` or ``cifar10/config``: the key of ``KNOWN_STATS``."""
    return tfds_name.split("/")[0].split(":")[0]


def tfds_split(name: str, split: str, data_dir):
    """The random-access source (``tfds.data_source``) of split ``split`` of the tfds dataset
    ``name`` in ``data_dir`` (None: tfds's default); the test split falls back to
    ``validation`` where there is none (imagenet2012). Clear errors for an unknown or
    unprepared dataset, or one without ``image`` and ``label`` features."""
    import tensorflow_datasets as tfds

    try:
        source = tfds.data_source(name, split=split, data_dir=data_dir, download=False)
    except tfds.core.registered.DatasetNotFoundError:
        raise ValueError(f"TensorFlow Datasets has no dataset {name!r}; see "
                         "https://www.tensorflow.org/datasets/catalog.") from None
    except ValueError as e:
        if split == "test" and "split" in str(e).lower():
            return tfds_split(name, "validation", data_dir)  # e.g. imagenet2012 has no test split
        raise
    except Exception as e:  # not prepared: tfds raises several types for this
        raise FileNotFoundError(
            f"tfds dataset {name!r} is not prepared for random access in "
            f"{data_dir or '~/tensorflow_datasets'} ({type(e).__name__}). Prepare it once "
            f"with `tfds build {name} --file_format=array_record --data_dir=DIR` (needs "
            "internet and TensorFlow) and pass --config.data_dir=DIR, or use "
            "--config.dataset=npz:PATH or --config.dataset=digits.") from None
    check_image_features(source, f"tfds dataset {name!r} ({split} split)")
    return source


def check_image_features(source, what: str) -> None:
    """A ValueError unless ``source``'s records have ``image`` and ``label`` features."""
    features = source.dataset_info.features
    if "image" not in features or "label" not in features:
        raise ValueError(f"{what} is not an image classification set with 'image' and 'label' "
                         f"features (it has {sorted(features)}).")


def _tfds(name, data_dir):
    arrays, num_classes = [], None
    for split in ("train", "test"):
        source = tfds_split(name, split, data_dir)
        num_classes = source.dataset_info.features["label"].num_classes
        records = [source[i] for i in range(len(source))]
        arrays += [np.stack([r["image"] for r in records]).astype(np.uint8),
                   np.asarray([r["label"] for r in records])]
    return arrays + [num_classes]
