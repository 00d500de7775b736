import numpy as np
import xarray as xr

from cortex_ep import io
from cortex_ep.model.spec import Network, Population, Projection
from cortex_ep.recordings import traces


def _net():
    return Network((Population("x", 4, "input"), Population("h", 6, "hidden", columns=3),
                    Population("y", 2, "output")),
                   (Projection("x", "h"), Projection("h", "y")), tau=10.0, dt=5.0)


def test_phase_traces_layout():
    net = _net()
    T1, T2 = 3, 2
    n, S = 2, T1 + 2 * T2
    # state after step k of sample i is 100 i + k (+ 0.5 for the output)
    steps = np.arange(S)[None, :, None] + 100 * np.arange(n)[:, None, None]
    states = {"h": np.broadcast_to(steps, (n, S, 6)).astype(float),
              "y": np.broadcast_to(steps + 0.5, (n, S, 2)).astype(float)}
    out = traces.phase_traces(states, net, T1, T2, ("free", "nudged", "nudged_neg"))
    assert out.shape == (n, 3, T1 + 1, 8)
    np.testing.assert_array_equal(out[1, 0, :, 0], [0, 100, 101, 102])
    # nudged phases start from the free fixed point (step T1 - 1)
    np.testing.assert_array_equal(out[1, 1, :3, 0], [102, 103, 104])
    np.testing.assert_array_equal(out[1, 2, :3, 7], [102.5, 105.5, 106.5])
    assert np.isnan(out[0, 1, 3]).all()


def test_traces_round_trip_through_netcdf(tmp_path):
    net = _net()
    rng = np.random.default_rng(0)
    trace = rng.uniform(0, 1, (3, 2, 4, 8))
    trace[:, 1, 3] = np.nan
    ds = traces.traces_dataset(net, trace, ("free", "nudged"), rng.uniform(0, 1, (3, 4)),
                               np.array([1, 7, 3]), sample_ids=np.array([5, 9, 11]),
                               attrs={"beta": 0.5, "estimator": "one-sided"})
    assert ds.s.dims == ("sample", "phase", "time", "unit")
    assert ds.time.attrs["units"] == "ms"
    np.testing.assert_array_equal(ds.time, [0.0, 5.0, 10.0, 15.0])
    assert ds.layer.values.tolist() == ["h"] * 6 + ["y"] * 2
    assert ds.column.values.tolist() == [0, 0, 1, 1, 2, 2, 0, 0]
    assert ds.index.values.tolist() == [0, 1, 2, 3, 4, 5, 0, 1]
    path = io.write_dataset(ds, tmp_path / "traces.nc")
    xr.testing.assert_identical(io.read_dataset(path), ds)
    compressed = io.write_dataset(ds, tmp_path / "deflated.nc", compress=True)
    xr.testing.assert_identical(io.read_dataset(compressed), ds)


def test_atomic_write_keeps_previous_file_on_failure(tmp_path):
    path = tmp_path / "a.nc"
    good = xr.Dataset({"v": ("epoch", [1.0, 2.0])})
    io.write_dataset(good, path)
    bad = xr.Dataset({"v": ("epoch", np.array([object(), object()]))})
    try:
        io.write_dataset(bad, path)
    except Exception:
        pass
    xr.testing.assert_identical(io.read_dataset(path), good)
    assert [p.name for p in tmp_path.iterdir()] == ["a.nc"]
