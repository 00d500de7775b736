"""Checkpoints: a run killed with SIGKILL in the middle of an epoch and resumed ends with
exactly the weights of an uninterrupted run, for every engine; same seed, same run."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import xarray as xr
from conftest import make_idx_dir

from cortex_ep import io
from cortex_ep.cli.main import main
from cortex_ep.learning import checkpoint

TINY_MODEL = '''
"""A 16-8-10 network for the resume tests."""
from cortex_ep.model.spec import layered

TRAINING = {"epochs": 2, "batch_size": 5, "free_steps": 30, "nudged_steps": 4}


def network(learning_rates=(0.2, 0.1)):
    return layered([16, 8, 10], learning_rates, name="tiny16")
'''

#: training digits per engine, chosen so that an epoch lasts about a second here:
#: long enough to kill it in the middle
TRAIN_SIZE = {"numpy": 1500, "torch": 3000, "rbp": 400, "backprop": 12000, "brian": 80}
EPOCHS = 3


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("resume")
    model = root / "tiny16.py"
    model.write_text(TINY_MODEL)
    data = root / "mnist"
    data.mkdir()
    make_idx_dir(data, n_train=max(TRAIN_SIZE.values()), n_test=50)
    return root, str(model), str(data)


def _argv(engine, model, data, out, epochs=EPOCHS, noise="0.05"):
    # noise makes the engines' own generators part of what must be restored
    return ["train", "--model", model, "--data", data, "--engine", engine, "--target",
            "numpy", "--train-size", str(TRAIN_SIZE[engine]), "--epochs", str(epochs),
            "--noise", "0" if engine == "backprop" else noise, "--seed", "3",
            "--out", str(out), "--no-progress"]


def _completed(out) -> int:
    try:
        return int(io.read_dataset(out / checkpoint.FILENAME).attrs["completed_epochs"])
    except (OSError, KeyError, ValueError):
        return 0


def _kill_after_the_first_epoch(argv, out):
    """Start the run in a new process group and SIGKILL it in epoch 2 (or, on a slow
    machine, epoch 3): two epochs of window, so the kill never misses the run."""
    proc = subprocess.Popen([sys.executable, "-m", "cortex_ep.cli", *argv],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    deadline = time.monotonic() + 240
    try:
        # the epoch's last file (weights.nc, after the checkpoint and history.nc): its
        # appearance, checked without reading anything, starts epoch 2's training, in
        # which the kill below falls (the writes at an epoch's end are not to be hit)
        while not (out / "weights.nc").exists():
            if proc.poll() is not None:
                raise AssertionError(f"the run ended early: {proc.stderr.read().decode()}")
            if time.monotonic() > deadline:
                raise AssertionError("no checkpoint appeared within 240 s")
            time.sleep(0.005)
        started = time.monotonic()
        first_epoch = float(io.read_dataset(out / "history.nc").seconds[0])
        time.sleep(max(0.0, started + 0.3 * first_epoch - time.monotonic()))
    finally:
        # the whole process group: Brian2's standalone binary too
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL


@pytest.mark.parametrize("engine", list(TRAIN_SIZE))
def test_killed_mid_epoch_and_resumed_equals_uninterrupted(setup, engine):
    root, model, data = setup
    reference, killed = root / f"{engine}-ref", root / f"{engine}-killed"
    assert main(_argv(engine, model, data, reference)) == 0

    _kill_after_the_first_epoch(_argv(engine, model, data, killed), killed)
    # killed inside an epoch: the finished ones are on disk, and nothing half-written
    assert 1 <= _completed(killed) < EPOCHS
    assert not [p for p in killed.rglob("*") if p.name.endswith(".tmp")]

    assert main(["train", "--resume", str(killed), "--no-progress"]) == 0
    want = io.read_dataset(reference / "weights.nc")
    got = io.read_dataset(killed / "weights.nc")
    for name in want.data_vars:
        np.testing.assert_array_equal(got[name].values, want[name].values, err_msg=name)
    hist_want = io.read_dataset(reference / "history.nc").drop_vars("seconds")
    hist_got = io.read_dataset(killed / "history.nc").drop_vars("seconds")
    xr.testing.assert_equal(hist_got, hist_want)


@pytest.mark.parametrize("engine", list(TRAIN_SIZE))
def test_same_seed_same_history_and_weights(setup, engine, tmp_path):
    root, model, data = setup
    runs = []
    for name in ("a", "b"):
        out = tmp_path / name
        argv = _argv(engine, model, data, out, epochs=1)
        argv[argv.index("--train-size") + 1] = "200"
        assert main(argv) == 0
        runs.append((io.read_dataset(out / "history.nc").drop_vars("seconds"),
                     io.read_dataset(out / "weights.nc")))
    xr.testing.assert_identical(runs[0][0], runs[1][0])
    xr.testing.assert_identical(runs[0][1], runs[1][1])


@pytest.mark.parametrize("extra", [[], ["--shift", "1"]])
def test_resume_extends_a_finished_run(setup, tmp_path, extra):
    root, model, data = setup
    argv = _argv("numpy", model, data, tmp_path / "once", epochs=2) + extra
    argv[argv.index("--train-size") + 1] = "200"
    assert main(argv) == 0
    in_two = tmp_path / "in_two"
    argv = _argv("numpy", model, data, in_two, epochs=1) + extra
    argv[argv.index("--train-size") + 1] = "200"
    assert main(argv) == 0
    assert main(["train", "--resume", str(in_two), "--epochs", "2", "--no-progress"]) == 0
    xr.testing.assert_identical(io.read_dataset(in_two / "weights.nc"),
                                io.read_dataset(tmp_path / "once" / "weights.nc"))


def test_continual_separate_run_resumes_exactly(setup, tmp_path):
    """The rule and the feedback mode are restored from the run's files."""
    root, model, data = setup
    extra = ["--plasticity", "continual", "--feedback", "separate", "--feedback-init",
             "random"]
    once = _argv("torch", model, data, tmp_path / "once", epochs=2) + extra
    once[once.index("--train-size") + 1] = "100"
    assert main(once) == 0
    in_two = tmp_path / "in_two"
    first = _argv("torch", model, data, in_two, epochs=1) + extra
    first[first.index("--train-size") + 1] = "100"
    assert main(first) == 0
    assert main(["train", "--resume", str(in_two), "--epochs", "2", "--no-progress"]) == 0
    xr.testing.assert_identical(io.read_dataset(in_two / "weights.nc"),
                                io.read_dataset(tmp_path / "once" / "weights.nc"))
