"""Data: IDX files, the embedded digits, subsets and their checks."""
import numpy as np
import pytest
from conftest import make_idx_dir
from hypothesis import given, settings
from hypothesis import strategies as st

from cortex_ep import data


@pytest.mark.parametrize("gz", [False, True])
def test_idx_round_trip(tmp_path, gz):
    arr = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    path = tmp_path / ("a.idx" + (".gz" if gz else ""))
    data.write_idx(path, arr)
    out = data.read_idx(path)
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, arr)


def test_idx_header_layout(tmp_path):
    path = tmp_path / "labels"
    data.write_idx(path, np.array([3, 1, 4], dtype=np.uint8))
    raw = path.read_bytes()
    # magic 0x00000801, then the big-endian length, then the bytes
    assert raw == bytes([0, 0, 8, 1, 0, 0, 0, 3, 3, 1, 4])


def test_truncated_and_bad_files(tmp_path):
    path = tmp_path / "img"
    data.write_idx(path, np.zeros((5, 4, 4), dtype=np.uint8))
    path.write_bytes(path.read_bytes()[:-3])
    with pytest.raises(data.DataError, match="truncated or corrupt"):
        data.read_idx(path)
    path.write_bytes(b"PK\x03\x04garbage")
    with pytest.raises(data.DataError, match="not an IDX file"):
        data.read_idx(path)
    gzpath = tmp_path / "bad.gz"
    gzpath.write_bytes(b"not gzip at all")
    with pytest.raises(data.DataError, match="cannot read IDX file"):
        data.read_idx(gzpath)


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=64))
def test_arbitrary_bytes_never_crash_the_reader(tmp_path_factory, blob):
    path = tmp_path_factory.mktemp("idx") / "blob"
    path.write_bytes(blob)
    try:
        out = data.read_idx(path)
    except data.DataError:
        return
    assert out.size * out.dtype.itemsize == len(blob) - 4 - 4 * blob[3]


@pytest.mark.parametrize("gz", [False, True])
def test_load_idx_dir(tmp_path, gz):
    make_idx_dir(tmp_path, gz=gz)
    digits = data.load(str(tmp_path))
    assert digits.x_train.shape == (40, 16) and digits.x_test.shape == (20, 16)
    assert digits.x_train.max() <= 1.0 and digits.x_train.min() >= 0.0
    assert sorted(np.bincount(digits.y_train)) == [4] * 10
    sub = data.load(str(tmp_path), train_size=20, test_size=10)
    assert np.bincount(sub.y_train).tolist() == [2] * 10
    assert np.bincount(sub.y_test).tolist() == [1] * 10


def test_missing_and_incomplete_directories(tmp_path):
    with pytest.raises(data.DataError, match="does not exist"):
        data.load(str(tmp_path / "nowhere"))
    make_idx_dir(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(data.DataError, match="has no t10k-labels-idx1-ubyte"):
        data.load(str(tmp_path))


def test_mismatched_files(tmp_path):
    make_idx_dir(tmp_path)
    data.write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(7, dtype=np.uint8))
    with pytest.raises(data.DataError, match="do not belong together"):
        data.load(str(tmp_path))


def test_nan_and_range_checks(tmp_path):
    make_idx_dir(tmp_path)
    images = np.full((40, 4, 4), 0.5, dtype=np.float32)
    images[3, 1, 1] = np.nan
    data.write_idx(tmp_path / "train-images-idx3-ubyte", images)
    with pytest.raises(data.DataError, match="NaN"):
        data.load(str(tmp_path))
    with pytest.raises(data.DataError, match=r"lie in \[0, 1\]"):
        data.check_digits(np.full((2, 3), 255.0), np.array([0, 1]))
    with pytest.raises(data.DataError, match="labels must be integers 0..9"):
        data.check_digits(np.zeros((2, 3)), np.array([0, 12]))
    with pytest.raises(data.DataError, match="one label per image"):
        data.check_digits(np.zeros((2, 3)), np.array([0]))


def test_subset_sizes_are_checked(tmp_path):
    make_idx_dir(tmp_path)
    with pytest.raises(data.DataError, match="only 40 samples"):
        data.load(str(tmp_path), train_size=41)
    with pytest.raises(data.DataError, match="positive integer"):
        data.load(str(tmp_path), train_size=0)
    with pytest.raises(data.DataError, match="positive integer"):
        data.load(str(tmp_path), test_size=-5)


def test_stratified_split_is_balanced_disjoint_and_deterministic():
    y = np.repeat(np.arange(10), 50)
    a, b = data.stratified_split(y, 200, 100, seed=3)
    assert np.bincount(y[a]).tolist() == [20] * 10
    assert np.bincount(y[b]).tolist() == [10] * 10
    assert not set(a) & set(b)
    a2, b2 = data.stratified_split(y, 200, 100, seed=3)
    np.testing.assert_array_equal(a, a2)
    np.testing.assert_array_equal(b, b2)
    odd = data.stratified_indices(y, 13)
    assert np.bincount(y[odd]).tolist() == [2, 2, 2] + [1] * 7


def test_embedded_digits():
    digits = data.load_embedded()
    assert digits.x_train.shape == (4000, 784) and digits.x_test.shape == (1000, 784)
    assert np.bincount(digits.y_train).tolist() == [400] * 10
    assert np.bincount(digits.y_test).tolist() == [100] * 10
    assert 0.0 <= digits.x_train.min() and digits.x_train.max() == 1.0
    # the split is deterministic
    again = data.load_embedded()
    np.testing.assert_array_equal(digits.x_test, again.x_test)


def test_one_hot():
    np.testing.assert_array_equal(data.one_hot(np.array([2, 0]), 3),
                                  [[0, 0, 1], [1, 0, 0]])


def test_validation_split_never_uses_the_held_out_digits(tmp_path):
    make_idx_dir(tmp_path)
    digits = data.load(str(tmp_path))
    split = data.validation_split(digits, 10, seed=1)
    assert split.x_train.shape == (30, 16) and split.x_test.shape == (10, 16)
    assert np.bincount(split.y_test).tolist() == [1] * 10
    # validation digits come from the training set, disjoint from what is trained on
    train_rows = {r.tobytes() for r in digits.x_train}
    assert all(r.tobytes() in train_rows for r in split.x_test)
    assert not {r.tobytes() for r in split.x_test} & {r.tobytes() for r in split.x_train}
    assert "validation" in split.source
    with pytest.raises(data.DataError, match="--validation"):
        data.validation_split(digits, 40)
