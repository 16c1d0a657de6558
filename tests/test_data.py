"""Datasets, the search split, deterministic batch streams and on-device augmentation."""

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


def test_tfds_dataset_under_mock_data():
    with tfds.testing.mock_data(num_examples=12):
        data = load_dataset("tfds:cifar10")
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
