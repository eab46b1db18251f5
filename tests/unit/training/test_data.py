import os

import numpy as np
import pytest

from container.training.data import DataError, load_mnist
from local_test.prepare_data import write_idx

RNG = np.random.default_rng(0)
X_TRAIN = RNG.integers(0, 256, (50, 28, 28), dtype=np.uint8)
Y_TRAIN = RNG.integers(0, 10, 50).astype(np.uint8)
X_TEST = RNG.integers(0, 256, (20, 28, 28), dtype=np.uint8)
Y_TEST = RNG.integers(0, 10, 20).astype(np.uint8)


def write_idx_files(folder, prefix, images, labels, gz=True):
    os.makedirs(folder, exist_ok=True)
    suffix = ".gz" if gz else ""
    paths = (
        os.path.join(folder, f"{prefix}-images-idx3-ubyte{suffix}"),
        os.path.join(folder, f"{prefix}-labels-idx1-ubyte{suffix}"),
    )
    for path, array in zip(paths, (images, labels)):
        write_idx(path, array)
    return paths


def channels(tmp_path, gz=True):
    training, testing = tmp_path / "training", tmp_path / "testing"
    train_paths = write_idx_files(training, "train", X_TRAIN, Y_TRAIN, gz)
    test_paths = write_idx_files(testing, "t10k", X_TEST, Y_TEST, gz)
    return str(training), str(testing), train_paths, test_paths


def assert_loaded(train, test):
    assert train.images.shape == (50, 1, 28, 28) and test.images.shape == (20, 1, 28, 28)
    assert np.array_equal(train.images[:, 0].numpy(), X_TRAIN)
    assert np.array_equal(test.labels.numpy(), Y_TEST)


@pytest.mark.parametrize("gz", [True, False])
def test_idx_files_raw_or_gzipped(tmp_path, gz):
    training, testing, _, _ = channels(tmp_path, gz)
    assert_loaded(*load_mnist(training, testing))


def test_one_training_channel_holding_both_splits(tmp_path):
    write_idx_files(tmp_path, "train", X_TRAIN, Y_TRAIN)
    write_idx_files(tmp_path / "sub", "t10k", X_TEST, Y_TEST)
    assert_loaded(*load_mnist(str(tmp_path)))


def test_kaggle_style_names_with_a_dot(tmp_path):
    write_idx(str(tmp_path / "train-images.idx3-ubyte.gz"), X_TRAIN)
    write_idx(str(tmp_path / "train-labels.idx1-ubyte.gz"), Y_TRAIN)
    write_idx(str(tmp_path / "t10k-images.idx3-ubyte.gz"), X_TEST)
    write_idx(str(tmp_path / "t10k-labels.idx1-ubyte.gz"), Y_TEST)
    assert_loaded(*load_mnist(str(tmp_path)))


def test_npz_in_keras_layout(tmp_path):
    np.savez(tmp_path / "mnist.npz", x_train=X_TRAIN, y_train=Y_TRAIN, x_test=X_TEST, y_test=Y_TEST)
    assert_loaded(*load_mnist(str(tmp_path)))


def test_npz_with_float_pixels_and_flat_images(tmp_path):
    np.savez(
        tmp_path / "train.npz",
        x_train=X_TRAIN.reshape(50, 784) / 255.0,
        y_train=Y_TRAIN,
        x_test=X_TEST.reshape(20, 1, 28, 28),
        y_test=Y_TEST,
    )
    assert_loaded(*load_mnist(str(tmp_path)))


def test_missing_channel_folder(tmp_path):
    with pytest.raises(DataError, match=r"channel 'training': folder .*nowhere does not exist"):
        load_mnist(str(tmp_path / "nowhere"))


def test_empty_channel_says_what_is_expected(tmp_path):
    with pytest.raises(DataError, match="no training split: expected train-images-idx3-ubyte"):
        load_mnist(str(tmp_path))


def test_missing_test_split(tmp_path):
    write_idx_files(tmp_path / "training", "train", X_TRAIN, Y_TRAIN)
    with pytest.raises(DataError, match="no test split"):
        load_mnist(str(tmp_path / "training"))


def test_missing_labels_file_is_named(tmp_path):
    training, testing, train_paths, _ = channels(tmp_path)
    os.remove(train_paths[1])
    with pytest.raises(DataError) as raised:
        load_mnist(training, testing)
    assert train_paths[0] in str(raised.value) and "labels file is missing" in str(raised.value)


@pytest.mark.parametrize("which", [0, 1])
def test_truncated_file_is_named(tmp_path, which):
    training, testing, train_paths, _ = channels(tmp_path, gz=False)
    path = train_paths[which]
    with open(path, "rb") as f:
        data = f.read()
    with open(path, "wb") as f:
        f.write(data[:-7])
    with pytest.raises(DataError) as raised:
        load_mnist(training, testing)
    assert path in str(raised.value) and "truncated" in str(raised.value)


def test_truncated_gzip_is_named(tmp_path):
    training, testing, train_paths, _ = channels(tmp_path)
    with open(train_paths[0], "rb") as f:
        data = f.read()
    with open(train_paths[0], "wb") as f:
        f.write(data[: len(data) // 2])
    with pytest.raises(DataError, match="cannot be read"):
        load_mnist(training, testing)


def test_corrupt_gzip_is_named(tmp_path):
    training, testing, train_paths, _ = channels(tmp_path)
    with open(train_paths[0], "wb") as f:
        f.write(b"\x1f\x8b\x08 a gzip header, then no deflate stream")
    with pytest.raises(DataError) as raised:
        load_mnist(training, testing)
    assert train_paths[0] in str(raised.value) and "cannot be read" in str(raised.value)


def test_wrong_magic_number(tmp_path):
    training, testing, train_paths, _ = channels(tmp_path)
    write_idx(train_paths[0], Y_TRAIN)  # a labels file under an images name
    with pytest.raises(DataError, match="not an IDX images file: magic number 0x00000801"):
        load_mnist(training, testing)


def test_label_out_of_range_is_mislabelled(tmp_path):
    labels = Y_TEST.copy()
    labels[3] = 11
    training, testing, _, test_paths = channels(tmp_path)
    write_idx(test_paths[1], labels)
    with pytest.raises(DataError) as raised:
        load_mnist(training, testing)
    assert test_paths[1] in str(raised.value)
    assert "label 11 at index 3 is not a digit 0-9" in str(raised.value)


def test_label_count_differs_from_image_count(tmp_path):
    training, testing, train_paths, _ = channels(tmp_path)
    write_idx(train_paths[1], Y_TRAIN[:49])
    with pytest.raises(DataError, match="49 labels for 50 images"):
        load_mnist(training, testing)


def test_images_of_the_wrong_size(tmp_path):
    training, testing, train_paths, _ = channels(tmp_path)
    write_idx(train_paths[0], np.zeros((50, 32, 32), np.uint8))
    with pytest.raises(DataError, match="images are 32x32, expected 28x28"):
        load_mnist(training, testing)


def test_npz_missing_labels(tmp_path):
    np.savez(tmp_path / "mnist.npz", x_train=X_TRAIN, x_test=X_TEST, y_test=Y_TEST)
    with pytest.raises(DataError, match="has x_train without y_train"):
        load_mnist(str(tmp_path))


def test_corrupt_npz(tmp_path):
    (tmp_path / "mnist.npz").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(DataError, match="not a readable .npz file"):
        load_mnist(str(tmp_path))


def test_npz_pixels_out_of_range(tmp_path):
    np.savez(
        tmp_path / "mnist.npz", x_train=X_TRAIN * 2.0, y_train=Y_TRAIN, x_test=X_TEST, y_test=Y_TEST
    )
    with pytest.raises(DataError, match="pixels must be uint8 0-255 or floats in 0-1"):
        load_mnist(str(tmp_path))
