"""Datasets, the search split, deterministic batch streams and on-device augmentation."""

import pickle
import re

import jax
import numpy as np
import pytest
import tensorflow_datasets as tfds

from jaxnas.data import (BatchStream, check_batch_size, data_mesh, load_dataset, normalize,
                         preprocess, search_split)


def test_digits_is_embedded_and_split():
    data = load_dataset("digits")
    assert data.x_train.shape == (1437, 8, 8, 1) and data.x_test.shape == (360, 8, 8, 1)
    assert data.x_train.dtype == np.uint8 and data.num_classes == 10
    assert data.x_train.max() == 255  # 16 (the digits' maximum) maps to 255
    pixels = data.x_train.astype(np.float64) / 255
    np.testing.assert_allclose(data.mean, [pixels.mean()], rtol=1e-9)
    np.testing.assert_allclose(data.std, [pixels.std()], rtol=1e-9)


def test_npz_dataset(tmp_path, cifar10_subset_path):
    data = load_dataset(f"npz:{cifar10_subset_path}")
    assert data.x_train.shape == (4000, 32, 32, 3) and data.x_test.shape == (1000, 32, 32, 3)
    assert list(data.y_train[:10]) == [6, 9, 9, 4, 1, 1, 2, 7, 8, 3]  # data_batch_1's first labels
    assert data.y_train.dtype == np.int32 and data.num_classes == 10
    pixels = data.x_train.reshape(-1, 3).astype(np.float64) / 255
    np.testing.assert_allclose(data.mean, pixels.mean(0), rtol=1e-9)
    path = tmp_path / "bad.npz"
    np.savez(path, x_train=np.zeros((4, 8, 8, 1), np.uint8), y_train=np.zeros(4))
    with pytest.raises(ValueError, match=r"lacks the arrays \['x_test', 'y_test'\]"):
        load_dataset(f"npz:{path}")
    np.savez(path, x_train=np.zeros((4, 8, 8, 1), np.float32), y_train=np.zeros(4),
             x_test=np.zeros((2, 8, 8, 1), np.float32), y_test=np.zeros(2))
    with pytest.raises(ValueError, match="must be uint8"):
        load_dataset(f"npz:{path}")
    with pytest.raises(FileNotFoundError, match="digits"):
        load_dataset(f"npz:{tmp_path / 'missing.npz'}")


def npz_spec(tmp_path, name="set.npz", **arrays):
    """npz:PATH of 10 classes of 8x8 RGB images, 50 per class for train and 10 for test, with
    ``arrays`` replacing or adding arrays."""
    arrays = {"x_train": np.zeros((500, 8, 8, 3), np.uint8), "y_train": np.arange(500) % 10,
              "x_test": np.zeros((100, 8, 8, 3), np.uint8), "y_test": np.arange(100) % 10,
              **arrays}
    np.savez(tmp_path / name, **arrays)
    return f"npz:{tmp_path / name}"


def test_npz_images_must_be_nhwc_uint8_with_1_or_3_channels(tmp_path):
    assert load_dataset(npz_spec(tmp_path)).image_shape == (8, 8, 3)
    nchw = npz_spec(tmp_path, x_train=np.zeros((500, 3, 8, 8), np.uint8),
                    x_test=np.zeros((100, 3, 8, 8), np.uint8))
    with pytest.raises(ValueError, match=re.escape(
            "x_train must be NHWC images with 1 (grayscale) or 3 (RGB) channels in the last "
            "axis, got shape (500, 3, 8, 8). Its axis 1 has 3, so the images look like NCHW: "
            "transpose them with np.transpose(x, (0, 2, 3, 1)).")):
        load_dataset(nchw)
    two = npz_spec(tmp_path, x_train=np.zeros((500, 8, 8, 2), np.uint8),
                   x_test=np.zeros((100, 8, 8, 2), np.uint8))
    with pytest.raises(ValueError, match=r"x_train must be NHWC images with 1 \(grayscale\) or 3 "
                       r"\(RGB\) channels in the last axis, got shape \(500, 8, 8, 2\)\.$"):
        load_dataset(two)
    empty = npz_spec(tmp_path, x_train=np.zeros((0, 8, 8, 3), np.uint8), y_train=np.zeros(0, int))
    with pytest.raises(ValueError, match=re.escape(
            "x_train is empty (shape (0, 8, 8, 3)); each split needs at least one image.")):
        load_dataset(empty)


def test_npz_labels_must_be_non_negative_integers(tmp_path):
    column = load_dataset(npz_spec(tmp_path, y_train=(np.arange(500) % 10)[:, None]))
    assert column.y_train.shape == (500,) and column.num_classes == 10  # [N, 1] is raveled
    floats = npz_spec(tmp_path, y_train=np.arange(500.0) % 10)
    with pytest.raises(ValueError, match=re.escape(
            "y_train must be integer class indices, got dtype float64. They are whole numbers: "
            "convert them with y.astype(np.int64).")):
        load_dataset(floats)
    fractions = npz_spec(tmp_path, y_test=np.arange(100) % 10 / 2)
    with pytest.raises(ValueError, match=re.escape("y_test[1] is 0.5, not a whole number")):
        load_dataset(fractions)
    with pytest.raises(ValueError, match="y_train must be integer class indices, got dtype bool"):
        load_dataset(npz_spec(tmp_path, y_train=np.arange(500) % 2 == 0))
    with pytest.raises(ValueError, match=re.escape("y_train must be class indices of shape [N] "
                                                   "(or [N, 1]), got shape (500, 10)")):
        load_dataset(npz_spec(tmp_path, y_train=np.eye(10, dtype=int)[np.arange(500) % 10]))
    labels = np.arange(500) % 10
    labels[42] = -1
    with pytest.raises(ValueError, match=re.escape("y_train[42] is -1; labels must be class "
                                                   "indices 0, 1, 2, ... Fix the label.")):
        load_dataset(npz_spec(tmp_path, y_train=labels))


def test_a_stray_label_is_rejected_unless_num_classes_says_so(tmp_path):
    labels = np.arange(500) % 10
    labels[123] = 10  # one stray label would make CIFAR-10 an 11-class set
    stray = npz_spec(tmp_path, y_train=labels)
    with pytest.raises(ValueError, match=re.escape(
            "label 10 occurs 1 time in y_train (first at y_train[123]), while the median class "
            "occurs 50 times, so it looks like a stray label (the class count inferred from the "
            "largest label is 11). If the set really has 11 classes, pass num_classes=11 "
            "(config.num_classes, or a num_classes array in the npz); otherwise fix the label.")):
        load_dataset(stray)
    data = load_dataset(stray, num_classes=11)
    assert data.num_classes == 11 and data.y_train[123] == 10
    assert load_dataset(npz_spec(tmp_path, y_train=labels, num_classes=11)).num_classes == 11
    test_labels = np.arange(100) % 10
    test_labels[7] = 10
    with pytest.raises(ValueError, match=re.escape("label 10 occurs 0 times in y_train (but at "
                                                   "y_test[7])")):
        load_dataset(npz_spec(tmp_path, y_test=test_labels))
    # A class that occurs in no split (a gap) is an error only while the count is inferred.
    gap = npz_spec(tmp_path, y_train=np.arange(500) % 5 * 2, y_test=np.arange(100) % 5 * 2)
    with pytest.raises(ValueError, match=re.escape(
            "class 1 occurs in neither y_train nor y_test, although labels go up to 8 (the "
            "inferred class count is 9). If the set really has 9 classes, pass num_classes=9 "
            "(config.num_classes, or a num_classes array in the npz); otherwise renumber the "
            "classes 0, 1, 2, ... without gaps.")):
        load_dataset(gap)
    assert load_dataset(gap, num_classes=10).num_classes == 10


def test_labels_must_be_below_a_known_class_count(tmp_path):
    test_labels = np.arange(100) % 10
    test_labels[7] = 10
    given = npz_spec(tmp_path, y_test=test_labels, num_classes=10)
    with pytest.raises(ValueError, match=re.escape(
            f"y_test[7] is 10, but the class count is 10 (from the num_classes array in "
            f"'{tmp_path / 'set.npz'}'), so labels must be in 0..9. Fix the label, or the class "
            "count if it is wrong.")):
        load_dataset(given, num_classes=11)  # the npz's own count comes first
    with pytest.raises(ValueError, match=re.escape(
            "y_train[5] is 5, but the class count is 5 (from the num_classes argument)")):
        load_dataset(npz_spec(tmp_path), num_classes=5)
    with pytest.raises(ValueError, match=re.escape("The num_classes array in ")):
        load_dataset(npz_spec(tmp_path, num_classes=np.array([10, 11])))
    with pytest.raises(ValueError, match=re.escape(
            "The num_classes argument (0 infers it from the labels) must be a positive integer "
            "scalar, got -1.")):
        load_dataset(npz_spec(tmp_path), num_classes=-1)


def test_a_file_that_is_not_an_npz_archive_is_named_so(tmp_path):
    (tmp_path / "text.npz").write_text("x_train,y_train\n")
    np.save(tmp_path / "array.npy", np.zeros((4, 8, 8, 1), np.uint8))
    (tmp_path / "pickle.npz").write_bytes(pickle.dumps({"x_train": np.zeros(3)}))
    (tmp_path / "empty.npz").write_bytes(b"")
    for name in ("text.npz", "array.npy", "pickle.npz", "empty.npz"):
        with pytest.raises(ValueError, match=re.escape(
                f"'{tmp_path / name}' is not an .npz archive of x_train, y_train, x_test, "
                "y_test. Write one with np.savez(")) as error:
            load_dataset(f"npz:{tmp_path / name}")
        assert "pickled" not in str(error.value)  # np.load's own message


def test_tfds_dataset_under_mock_data():
    with tfds.testing.mock_data(num_examples=12):
        data = load_dataset("tfds:cifar10")
        assert load_dataset("tfds:cifar10", num_classes=11).num_classes == 10  # tfds's count first
    assert data.x_train.shape == (12, 32, 32, 3) and data.num_classes == 10
    assert data.mean == (0.4914, 0.4822, 0.4465)  # CIFAR-10's published statistics


def test_missing_tfds_dataset_says_how_to_prepare_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="tfds build cifar10"):
        load_dataset("tfds:cifar10", data_dir=str(tmp_path))
    with pytest.raises(ValueError, match="no dataset 'not_a_dataset'"):
        load_dataset("tfds:not_a_dataset", data_dir=str(tmp_path))
    with pytest.raises(ValueError, match="Unknown dataset 'cifar10'"):
        load_dataset("cifar10")


def test_search_split_is_a_fixed_partition():
    train, val = search_split(101, 0.5, seed=3)
    assert len(train) == 50 and len(val) == 51
    assert not set(train) & set(val) and set(train) | set(val) == set(range(101))
    again, _ = search_split(101, 0.5, seed=3)
    np.testing.assert_array_equal(train, again)
    assert not np.array_equal(search_split(101, 0.5, seed=4)[0], train)
    with pytest.raises(ValueError, match="train_portion"):
        search_split(10, 1.5, 0)


def test_batch_stream_is_a_pure_function_of_the_position():
    indices = np.arange(100, 130)
    stream = BatchStream(indices, batch_size=7, seed=0)
    assert stream.steps_per_epoch == 4  # 30 // 7, the remainder is dropped
    epoch0 = [stream.batch(i) for i in range(4)]
    flat = np.concatenate(epoch0)
    assert len(set(flat)) == 28 and set(flat) <= set(indices)  # no repeats within an epoch
    assert not np.array_equal(stream.batch(4), epoch0[0])  # a new permutation next epoch
    fresh = BatchStream(indices, batch_size=7, seed=0)  # resumed at position 5
    np.testing.assert_array_equal(fresh.batch(5), stream.batch(5))
    np.testing.assert_array_equal(fresh.batch(2), epoch0[2])
    with pytest.raises(ValueError, match="exceeds"):
        BatchStream(indices, batch_size=31, seed=0)


def test_normalize():
    images = np.array([[[[0, 255, 51]]]], np.uint8)
    out = normalize(images, (0.5, 0.5, 0.2), (0.5, 0.25, 0.1))
    np.testing.assert_allclose(out, [[[[-1.0, 2.0, 0.0]]]], atol=1e-6)


def test_crop_and_flip_move_pixels_only():
    images = np.random.default_rng(0).integers(1, 255, (16, 8, 8, 1), dtype=np.uint8)
    out = np.asarray(preprocess(jax.random.PRNGKey(0), images, (0.0,), (1.0,), augment=True,
                                pad=2, flip=True))
    padded = np.pad(images / 255.0, ((0, 0), (2, 2), (2, 2), (0, 0)))
    for image, result in zip(padded, out):
        # Some crop of the padded image, flipped or not, equals the result exactly.
        candidates = [image[dy:dy + 8, dx:dx + 8] for dy in range(5) for dx in range(5)]
        candidates += [c[:, ::-1] for c in candidates]
        assert any(np.allclose(c, result, atol=1e-6) for c in candidates)
    assert not np.allclose(out, images / 255.0)  # something moved
    again = preprocess(jax.random.PRNGKey(0), images, (0.0,), (1.0,), augment=True, pad=2)
    np.testing.assert_array_equal(out, again)  # deterministic given the key


def test_cutout_zeroes_one_square():
    images = np.full((8, 12, 12, 1), 200, np.uint8)
    out = np.asarray(preprocess(jax.random.PRNGKey(1), images, (0.0,), (1.0,), augment=True,
                                pad=0, flip=False, cutout=4))
    for result in out:
        zero = result[..., 0] == 0
        rows, cols = np.nonzero(zero)
        assert 1 <= zero.sum() <= 16  # a 4x4 square, clipped at the borders
        assert zero.sum() == (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1)
        np.testing.assert_allclose(result[~zero], 200 / 255, rtol=1e-6)


def test_batch_size_must_divide_across_devices():
    mesh = data_mesh()
    check_batch_size(mesh.size * 3, mesh)
    if mesh.size > 1:
        with pytest.raises(ValueError, match="does not divide"):
            check_batch_size(mesh.size * 3 + 1, mesh)
