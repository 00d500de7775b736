"""Recordings in the field's formats: NWB export (round trip, nwbinspector, refusals)
and Neo spike trains with Elephant's statistics against hand computations.

These need the optional extra ``.[nwb]``; without it they are skipped."""

import numpy as np
import pytest
import xarray as xr
from conftest import refused, tiny_if_run_inputs

pynwb = pytest.importorskip("pynwb")
neo = pytest.importorskip("neo")
pytest.importorskip("elephant")
pq = pytest.importorskip("quantities")

from cortex_ep.cli.main import main  # noqa: E402
from cortex_ep.recordings import spiketrains  # noqa: E402
from cortex_ep.recordings.run import open_run  # noqa: E402


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """A tiny integrate-and-fire run (twin) recorded before and after its epoch."""
    tmp = tmp_path_factory.mktemp("if_run")
    model, idx = tiny_if_run_inputs(tmp)
    run = tmp / "run"
    assert main(["train", "--model", str(model), "--data", str(idx), "--neurons", "if",
                 "--engine", "torch", "--epochs", "1", "--record", "3", "--record-epochs",
                 "0", "1", "--free-ms", "50", "--nudged-ms", "10", "--out", str(run),
                 "--no-progress"]) == 0
    return run


def _read(path):
    io = pynwb.NWBHDF5IO(str(path), "r")
    return io, io.read()


def test_nwb_round_trip_gives_the_traces_spikes_and_trials_exactly(recorded, tmp_path):
    path = tmp_path / "run.nwb"
    assert main(["export", str(recorded), "--nwb", str(path), "--spikes"]) == 0
    traces = open_run(recorded, chunks=False).traces
    phases = [str(p) for p in traces.phase.values]
    assert phases == ["free", "nudged", "nudged_neg"]
    free_s, nudged_s = 0.050, 0.010
    trial_s = free_s + 2 * nudged_s
    phase_start = {"free": 0.0, "nudged": free_s, "nudged_neg": free_s + nudged_s}
    n_epoch, n_sample = traces.sizes["epoch"], traces.sizes["sample"]
    io, nwb = _read(path)
    try:
        trials = nwb.trials.to_dataframe()
        assert len(trials) == n_epoch * n_sample
        np.testing.assert_array_equal(trials.epoch, np.repeat(traces.epoch.values, n_sample))
        np.testing.assert_array_equal(trials.label, np.tile(traces.label.values, n_epoch))
        np.testing.assert_allclose(trials.start_time, trial_s * np.arange(len(trials)))
        assert (trials.correct == (trials.prediction == trials.label)).all()
        intervals = nwb.intervals["phases"].to_dataframe()
        assert list(intervals.phase[:3]) == phases
        np.testing.assert_allclose(intervals.stop_time - intervals.start_time,
                                   np.tile([free_s, nudged_s, nudged_s], len(trials)))
        # states: the free phase from t = 0, the later phases from their first step
        series = nwb.processing["states"]["h1_state"]
        assert series.unit == "dimensionless" and "columns: network/units_h1" in \
            series.description
        h1 = traces.s.where(traces.layer == "h1", drop=True)
        dt = float(traces.attrs["dt_ms"]) / 1000
        stamps, rows = [], []
        for e in range(n_epoch):
            for i in range(n_sample):
                start = (e * n_sample + i) * trial_s
                for p in phases:
                    steps = round((free_s if p == "free" else nudged_s) / dt)
                    first = 0 if p == "free" else 1
                    t = np.arange(first, steps + 1)
                    stamps.append(start + phase_start[p] + t * dt)
                    rows.append(h1.isel(epoch=e, sample=i).sel(phase=p).values[first:steps + 1])
        np.testing.assert_allclose(series.timestamps[:], np.concatenate(stamps), atol=1e-12)
        np.testing.assert_array_equal(series.data[:], np.concatenate(rows))
        units = nwb.processing["network"]["units_h1"].to_dataframe()
        np.testing.assert_array_equal(units["index"], np.arange(len(units)))
        # spikes: every unit's times on the file's clock, from the recorded spike list
        spikes = nwb.units.to_dataframe()
        assert len(spikes) == traces.sizes["unit"]
        expected = [[] for _ in range(traces.sizes["unit"])]
        samples = list(traces.sample.values)
        for e in range(n_epoch):
            ep = traces.isel(epoch=e)
            for t, s, p, u in zip(ep.spike_time.values, ep.spike_sample.values,
                                  ep.spike_phase.values, ep.spike_unit.values):
                if np.isfinite(t):
                    start = (e * n_sample + samples.index(int(s))) * trial_s
                    expected[int(u)].append(start + phase_start[str(p)] + t / 1000)
        assert sum(map(len, expected)) > 100
        for u in range(len(spikes)):
            np.testing.assert_allclose(spikes.spike_times.iloc[u], np.sort(expected[u]),
                                       atol=1e-12)
        assert list(spikes.layer[:2]) == ["h1", "h1"] and spikes.layer.iloc[-1] == "y"
        weights = open_run(recorded).weights
        np.testing.assert_array_equal(nwb.processing["network"]["W_h1_y"]["weight"][:],
                                      weights.W_h1_y.values.T)
        assert "integrate-and-fire" in nwb.notes or '"neurons": "if"' in nwb.notes
    finally:
        io.close()


def test_nwbinspector_finds_no_critical_issue(recorded, tmp_path):
    from nwbinspector import Importance, inspect_nwbfile

    path = tmp_path / "run.nwb"
    assert main(["export", str(recorded), "--nwb", str(path)]) == 0
    messages = list(inspect_nwbfile(nwbfile_path=str(path)))
    assert messages  # the inspector ran (a simulated subject has no species)
    assert not [m for m in messages if m.importance == Importance.CRITICAL], messages


def test_bad_exports_are_refused_and_leave_no_file(recorded, tmp_path, capsys):
    from conftest import make_idx_dir

    target = tmp_path / "out.nwb"
    # an existing file is kept unless --force
    target.write_text("keep me")
    assert "exists; give --force" in refused(["export", str(recorded), "--nwb", str(target)],
                                             capsys)
    assert target.read_text() == "keep me"
    assert main(["export", str(recorded), "--nwb", str(target), "--force"]) == 0
    assert target.stat().st_size > 10_000
    missing = tmp_path / "no" / "such" / "dir" / "x.nwb"
    assert "does not exist" in refused(["export", str(recorded), "--nwb", str(missing)],
                                       capsys)
    assert "end in .nwb" in refused(["export", str(recorded), "--nwb",
                                     str(tmp_path / "x.h5")], capsys)
    # a rate run without recordings, then one with recordings but no spikes
    (tmp_path / "idx").mkdir()
    idx = make_idx_dir(tmp_path / "idx", n_train=20, n_test=10)
    bare, rate = tmp_path / "bare", tmp_path / "rate"
    train = ["train", "--engine", "numpy", "--data", str(idx), "--epochs", "1",
             "--no-progress"]
    from conftest import TINY16_MODEL

    model = tmp_path / "tiny16.py"
    model.write_text(TINY16_MODEL)
    assert main([*train, "--model", str(model), "--out", str(bare)]) == 0
    assert main([*train, "--model", str(model), "--record", "2", "--out", str(rate)]) == 0
    out = tmp_path / "rate.nwb"
    assert "no recordings" in refused(["export", str(bare), "--nwb", str(out)], capsys)
    assert "no spikes to export" in refused(["export", str(rate), "--nwb", str(out),
                                             "--spikes"], capsys)
    assert "has no history.nc" in refused(["export", str(tmp_path), "--nwb", str(out)],
                                          capsys)
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    # the rate run exports its states without a Units table
    assert main(["export", str(rate), "--nwb", str(out)]) == 0
    io, nwb = _read(out)
    try:
        assert nwb.units is None and "h1_rate" in nwb.processing["states"].data_interfaces
    finally:
        io.close()
    with pytest.raises(ValueError, match="hold no spikes"):
        spiketrains.spike_trains(open_run(rate).traces.isel(epoch=0))


def test_neo_trains_carry_their_annotations(recorded):
    ep = open_run(recorded, chunks=False).traces.isel(epoch=-1)
    trains = spiketrains.spike_trains(ep, phase="free")
    assert len(trains) == ep.sizes["sample"] * ep.sizes["unit"]
    first = trains[0]
    assert isinstance(first, neo.SpikeTrain)
    assert first.annotations == {"population": "h1", "column": 0, "unit": 0,
                                 "sample": int(ep.sample.values[0]), "phase": "free"}
    assert float(first.t_stop.rescale(pq.ms)) == 50.0
    spikes_free = int((ep.spike_phase.values == "free").sum())
    assert sum(len(t) for t in trains) == spikes_free


def test_elephant_statistics_match_a_hand_computation_on_a_known_train():
    times = np.array([1.0, 2.0, 4.0, 7.0, 11.0, 16.0])
    train = neo.SpikeTrain(times * pq.ms, t_start=0 * pq.ms, t_stop=20 * pq.ms)
    silent = neo.SpikeTrain(np.zeros(0) * pq.ms, t_start=0 * pq.ms, t_stop=20 * pq.ms)
    got = spiketrains.statistics([train, silent], bin_ms=5.0)
    isi = np.diff(times)
    # bins (0,5], (5,10], (10,15], (15,20]: 3, 1, 1, 1 spikes
    counts = np.array([3, 1, 1, 1])
    assert got["rate_hz"] == pytest.approx((6 / 0.020 + 0) / 2)
    assert got["cv"] == pytest.approx(isi.std() / isi.mean())
    assert got["fano"] == pytest.approx(counts.var() / counts.mean())
    assert got["n_trains"] == 2


def test_spike_trains_of_a_constructed_recording():
    """Window (5, 10] of a phase: spikes at its edges are in (10) or out (5)."""
    ds = xr.Dataset(
        {"s": (("sample", "phase", "time", "unit"), np.zeros((1, 1, 21, 2))),
         "spike_time": ("spike", [5.0, 6.0, 10.0, 12.0]),
         "spike_sample": ("spike", [7, 7, 7, 7]),
         "spike_phase": ("spike", ["free"] * 4),
         "spike_unit": ("spike", [0, 1, 0, 0])},
        coords={"sample": [7], "phase": ["free"], "time": np.arange(21) * 1.0,
                "layer": ("unit", ["h", "h"]), "column": ("unit", [0, 1]),
                "index": ("unit", [0, 1])})
    trains = spiketrains.spike_trains(ds, t_start_ms=5.0, t_stop_ms=10.0)
    np.testing.assert_array_equal(trains[0].magnitude, [10.0])
    np.testing.assert_array_equal(trains[1].magnitude, [6.0])
    assert trains[1].annotations["column"] == 1
    # one spike in 5 ms in each train
    assert float(spiketrains.statistics(trains)["rate_hz"]) == pytest.approx(200.0)


def test_the_readme_example_plots_a_unit_over_the_phases(recorded, tmp_path, monkeypatch):
    import re
    from pathlib import Path

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    code = re.search(r"## Recordings in NWB and Neo\n.*?```python\n(.*?)```", readme,
                     re.S).group(1)
    assert main(["export", str(recorded), "--nwb", str(tmp_path / "run.nwb")]) == 0
    monkeypatch.chdir(tmp_path)
    plt.close("all")
    exec(compile(code, "README.md", "exec"), {})
    ax = plt.gca()
    assert [t.get_text() for t in ax.get_legend().get_texts()] == \
        ["free", "nudged", "nudged_neg"]
    # the spikes drawn are those the recording holds for that unit in the first trial
    first = open_run(recorded, chunks=False).traces.isel(epoch=0)
    unit = int(np.flatnonzero((first.layer.values == "y")
                              & (first["index"].values == int(first.label.values[0])))[0])
    start = {"free": 0.0, "nudged": 0.050, "nudged_neg": 0.060}
    mine = (first.spike_sample.values == first.sample.values[0]) & \
        (first.spike_unit.values == unit)
    want = sorted(start[str(p)] + t / 1000 for p, t in
                  zip(first.spike_phase.values[mine], first.spike_time.values[mine]))
    assert want  # the unit fired in that trial
    np.testing.assert_allclose(np.sort(ax.collections[-1].get_positions()), want,
                               atol=1e-12)
    plt.close("all")
