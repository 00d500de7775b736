"""Recording during learning, streamed per epoch, and the run-directory loader."""

import numpy as np
import pytest
import xarray as xr

from cortex_ep import Relaxation, data, io
from cortex_ep.engines.reference import ReferenceEngine
from cortex_ep.learning.loop import TrainConfig, record_traces, recording_path, train
from cortex_ep.model.estimators import Estimator
from cortex_ep.model.spec import layered
from cortex_ep.recordings import columns
from cortex_ep.recordings.run import open_run


def _digits():
    rng = np.random.default_rng(0)
    return data.Digits(rng.uniform(0, 1, (60, 6)), np.arange(60) % 10,
                       rng.uniform(0, 1, (30, 6)), np.arange(30) % 10, "test")


def _net():
    return layered([6, 8, 10], [0.2, 0.1], columns={1: 4}, lateral_lr={1: 0.1},
                   name="cols")


@pytest.fixture
def recorded(tmp_path):
    net, digits = _net(), _digits()
    config = TrainConfig(epochs=3, batch_size=5, engine="numpy",
                         estimator=Estimator("symmetric", 0.5), relaxation=Relaxation(40, 6))
    out = tmp_path / "run"
    history, W, b = train(net, digits, config, out=out, record=10, record_epochs=[0, 1, 3],
                          progress=False)
    return net, digits, config, out, W, b


def test_recordings_are_one_file_per_epoch(recorded):
    net, digits, config, out, W, b = recorded
    for kind in ("traces", "weights"):
        assert sorted(p.name for p in (out / kind).iterdir()) == [
            "epoch_0000.nc", "epoch_0001.nc", "epoch_0003.nc"]
    last = io.read_dataset(recording_path(out, "traces", 3))
    assert int(last.epoch) == 3
    # the recording after the last epoch is that of the final weights on the probe digits
    engine = ReferenceEngine(net, config.estimator, config.relaxation)
    again = record_traces(net, engine, config, W, b, digits.x_test[last.sample.values],
                          last.label.values, last.sample.values)
    np.testing.assert_allclose(last.s.values, again.s.values, atol=1e-12)


def test_open_run_concatenates_epochs_with_coordinates(recorded):
    net, digits, config, out, W, b = recorded
    run = open_run(out)
    assert run.history.epoch.values.tolist() == [1, 2, 3]
    tr = run.traces
    assert tr.s.dims == ("epoch", "sample", "phase", "time", "unit")
    assert tr.epoch.values.tolist() == [0, 1, 3]
    assert tr.phase.values.tolist() == ["free", "nudged", "nudged_neg"]
    assert tr.label.dims == ("sample",) and tr.sizes["sample"] == 10
    assert sorted(np.bincount(tr.label.values).tolist()) == [1] * 10  # balanced probe
    assert tr.column.values.tolist() == [0, 0, 1, 1, 2, 2, 3, 3] + [0] * 10
    assert tr.time.attrs["units"] == "ms"
    assert tr.s.chunks is not None  # lazy: one recorded epoch at a time
    wh = run.weight_history
    assert wh.L_h1.dims == ("epoch", "h1_column", "h1_pre", "h1_post")
    assert not wh.L_h1.sel(epoch=0).any()
    np.testing.assert_array_equal(wh.W_x_h1.sel(epoch=3).values, W["x_h1"])
    xr.testing.assert_identical(run.weights, io.read_dataset(out / "weights.nc"))
    eager = open_run(out, chunks=False)
    xr.testing.assert_identical(eager.traces, tr.compute())


def test_column_metrics_of_a_recorded_run(recorded):
    run = open_run(recorded[3])
    metrics = columns.column_metrics(run.traces, run.weight_history, "h1")
    assert metrics.selectivity.dims == ("epoch", "column")
    assert metrics.sizes["column"] == 4 and metrics.epoch.values.tolist() == [0, 1, 3]
    # learning moved the weights of every column after epoch 0
    assert (metrics.weight_change.sel(epoch=[1, 3]) > 0).all()
    assert np.isnan(metrics.weight_change.sel(epoch=0)).all()


def test_open_run_without_a_run(tmp_path):
    with pytest.raises(FileNotFoundError, match="has no history.nc"):
        open_run(tmp_path)
