"""Ctrl-C lands between files, never inside a netCDF write (whose locks it would leave
taken, hanging the process), and never as a quiet early stop of a Brian2 run.

Each test delivers a real SIGINT to this process at a chosen point, so none depends on
timing.
"""

import signal
import threading

import numpy as np
import pytest
import xarray as xr

from cortex_ep import Relaxation, io
from cortex_ep.data import Digits
from cortex_ep.learning import checkpoint
from cortex_ep.learning.loop import TrainConfig, train
from cortex_ep.model import energy
from cortex_ep.model.spec import layered


def _ctrl_c():
    signal.raise_signal(signal.SIGINT)


def test_ctrl_c_in_the_block_arrives_at_its_end_and_the_handler_is_restored():
    before = signal.getsignal(signal.SIGINT)
    reached = []
    with pytest.raises(KeyboardInterrupt):
        with io.interrupts_deferred():
            _ctrl_c()
            reached.append("after the signal")
    assert reached == ["after the signal"]
    assert signal.getsignal(signal.SIGINT) is before


def test_nested_blocks_deliver_once_at_the_outermost_end():
    reached = []
    with pytest.raises(KeyboardInterrupt):
        with io.interrupts_deferred():
            with io.interrupts_deferred():
                _ctrl_c()
            reached.append("inner block ended without raising")
    assert reached == ["inner block ended without raising"]


def test_a_quiet_block_raises_nothing():
    before = signal.getsignal(signal.SIGINT)
    with io.interrupts_deferred():
        pass
    assert signal.getsignal(signal.SIGINT) is before


def test_outside_the_main_thread_the_block_runs_unchanged():
    errors = []

    def work():
        try:
            with io.interrupts_deferred():
                errors.append(None)
        except Exception as err:  # signal.signal would raise ValueError here
            errors.append(err)

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    assert errors == [None]


def _dataset():
    return xr.Dataset({"w": (("pre", "post"), np.arange(12.0).reshape(3, 4))},
                      attrs={"units": "1"})


def test_ctrl_c_during_a_write_leaves_the_whole_file(tmp_path, monkeypatch):
    write = xr.Dataset.to_netcdf

    def interrupted_write(self, *args, **kwargs):
        _ctrl_c()  # as if the user pressed Ctrl-C while netCDF held its locks
        return write(self, *args, **kwargs)

    monkeypatch.setattr(xr.Dataset, "to_netcdf", interrupted_write)
    path = tmp_path / "w.nc"
    with pytest.raises(KeyboardInterrupt):
        io.write_dataset(_dataset(), path)
    monkeypatch.undo()
    xr.testing.assert_identical(io.read_dataset(path), _dataset())
    assert [p.name for p in tmp_path.iterdir()] == ["w.nc"]  # no temporary file left


def _digits():
    rng = np.random.default_rng(0)
    y = np.arange(30) % 3
    x = np.clip(rng.uniform(0, 0.2, (30, 6)) + np.eye(6)[y], 0, 1)
    return Digits(x[:20], y[:20], x[20:], y[20:], "synthetic")


def test_ctrl_c_during_the_checkpoint_leaves_checkpoint_history_and_weights_agreeing(
        tmp_path, monkeypatch):
    net = layered([6, 5, 3], [0.1, 0.05], tau=10.0, dt=5.0, name="tiny")
    config = TrainConfig(epochs=3, batch_size=5, engine="numpy", relaxation=Relaxation(6, 3))
    save = checkpoint.save
    saves = []

    def save_then_ctrl_c(*args, **kwargs):
        saves.append(None)
        if len(saves) == 2:
            _ctrl_c()
        return save(*args, **kwargs)

    monkeypatch.setattr(checkpoint, "save", save_then_ctrl_c)
    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        train(net, _digits(), config, out=out, progress=False)
    assert len(saves) == 2  # the interrupt stopped training after epoch 2's files
    assert checkpoint.load(out).epoch == 2
    assert io.read_dataset(out / "history.nc").sizes["epoch"] == 2
    xr.testing.assert_equal(io.read_dataset(out / "weights.nc"),
                            checkpoint.load(out).weights)
    assert not list(out.glob(".*.tmp"))


def test_ctrl_c_during_a_brian2_run_interrupts_it(tiny_net, tiny_batch, tmp_path,
                                                  monkeypatch):
    """Brian2's own handler would mark the run stopped and let it return early."""
    brian2 = pytest.importorskip("brian2")
    from cortex_ep.engines.brian.engine import BrianEngine, make_schedule
    from cortex_ep.model.estimators import Estimator

    x, d, _ = tiny_batch
    est = Estimator("one-sided", 0.5)
    engine = BrianEngine(tiny_net, est, Relaxation(6, 3), target="numpy",
                         build_root=tmp_path)
    schedule = make_schedule(x, d, est, np.random.default_rng(1), batch_size=4)
    network_run = brian2.Network.run

    def run_with_ctrl_c(self, *args, **kwargs):
        brian2.Network._globally_running = True  # what Network.run sets while it runs
        try:
            _ctrl_c()
        finally:
            brian2.Network._globally_running = False
        return network_run(self, *args, **kwargs)

    monkeypatch.setattr(brian2.Network, "run", run_with_ctrl_c)
    W, b = energy.init_params(tiny_net, 1)
    try:
        with pytest.raises(KeyboardInterrupt):
            engine.run(schedule, W, b)
    finally:
        brian2.Network._globally_stopped = False
