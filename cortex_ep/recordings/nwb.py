"""A run's recordings as one NWB file (Neurodata Without Borders, ``pynwb``).

:func:`export_nwb` (``cortex-ep export RUN --nwb FILE.nwb``) writes

==============================  ================================================
``session_description``, ...    the network and the run's settings (``notes``:
                                every setting as JSON)
``trials``                      one row per recorded probe digit and epoch:
                                ``epoch``, ``sample`` (index in the held-out
                                set), ``label``, ``prediction`` (the free
                                phase's output), ``correct``
``intervals/phases``            every phase of every trial (``free``,
                                ``nudged``, ``nudged_neg``) with its ``trial``
``processing/states``           per population, ``TimeSeries`` ``<pop>_state``
                                (``s``) and ``<pop>_rate`` (ρ(s)), columns =
                                the population's units
``processing/network``          ``units_<pop>``: ``layer``, ``column``,
                                ``index`` of every column of the state
                                series; the final weights, one table per
                                matrix (``W_x_h1``, ``B_h1_y``, …: one row per
                                postsynaptic unit, its ``weight`` row holding
                                the weights from every presynaptic unit) and
                                per population's biases (``b_h1``)
``units``                       spiking runs: every unit's spike times, with
                                ``layer``, ``column`` and ``index``
==============================  ================================================

Time in the file: the recorded trials lie end to end on one clock in seconds,
epoch after epoch and sample after sample, the phases of a trial in the order
they were simulated, each lasting its simulated time.  A state series holds
the free phase from its start (``s = 0``) and each later phase from its first
step (the phase's starting state is the previous point of the series or, for
a restarted phase, the free phase's end).

Needs the optional extra ``pip install 'cortex-ep[nwb]'``.

Example
-------
>>> from pynwb import NWBHDF5IO                                       # doctest: +SKIP
>>> with NWBHDF5IO("run.nwb", "r") as io:                             # doctest: +SKIP
...     nwb = io.read()
...     spikes = nwb.units["spike_times"][0]                          # unit 0's times (s)
...     phases = nwb.intervals["phases"].to_dataframe()
"""

from __future__ import annotations

import json
import os
import warnings
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from .. import io

#: what to install when pynwb is missing
EXTRA = "pip install 'cortex-ep[nwb]' (or pip install pynwb nwbinspector)"


class ExportError(ValueError):
    """An export that cannot be made; the message says why and what to do."""


def _output_population(attrs: dict, layers) -> str:
    """The population that no projection leaves: the output."""
    pairs = [p.split("->") for p in str(attrs.get("projections", "")).split()]
    pres = {a for a, _ in pairs}
    ends = [name for name in dict.fromkeys(layers) if name not in pres]
    if len(ends) != 1:
        raise ExportError(f"cannot tell the output population from projections "
                          f"{attrs.get('projections')!r}")
    return ends[0]


def check_export(run_dir, path, force: bool = False, spikes: bool = False):
    """Every reason the export cannot be made, before any work: returns the opened run.

    Raises
    ------
    ExportError
        Not a run directory, no recordings, no spikes where ``spikes`` asks for
        them, an existing file without ``force``, or a path that cannot be written.
    """
    from .run import open_run

    run_dir, path = Path(run_dir), Path(path)
    try:
        run = open_run(run_dir)
    except FileNotFoundError as err:
        raise ExportError(str(err)) from None
    if run.traces is None:
        raise ExportError(f"{run_dir} holds no recordings: train with --record N (for "
                          "example cortex-ep train --record 10) to record probe digits")
    if spikes and "spike_time" not in run.traces:
        raise ExportError(f"{run_dir} is a {run.attrs.get('neurons', 'rate')} run: it has no "
                          "spikes to export; drop --spikes, or record a run with --neurons "
                          "if or spiking")
    if path.suffix != ".nwb":
        raise ExportError(f"{path}: NWB files end in .nwb; give e.g. {path.with_suffix('.nwb')}")
    if path.is_dir():
        raise ExportError(f"{path} is a directory; give a file name ending in .nwb")
    if path.exists() and not force:
        raise ExportError(f"{path} exists; give --force to replace it, or another file name")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise ExportError(f"cannot write {path}: the directory {parent} does not exist; "
                          "create it first")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ExportError(f"cannot write {path}: the directory {parent} is not writable; "
                          "choose another place")
    return run


def _require_pynwb():
    try:
        import pynwb  # noqa: F401
    except ImportError:
        raise ExportError(f"pynwb is not installed; NWB export needs the optional extra: "
                          f"{EXTRA}") from None


def trial_layout(traces) -> dict:
    """Where everything lies on the file's clock.

    Returns
    -------
    dict with ``phases`` (names in simulated order), ``durations_s`` (per
    phase), ``trial_s`` (one trial's duration), ``starts_s`` ((n_epoch,
    n_sample) trial starts) and ``phase_starts_s`` (offsets within a trial).
    """
    from .spiketrains import phase_durations

    phases = [str(p) for p in traces.phase.values]
    one = traces.isel(epoch=0) if "epoch" in traces.dims else traces
    durations = np.array([phase_durations(one)[p] for p in phases]) / 1000.0
    trial = float(durations.sum())
    n_epoch = traces.sizes.get("epoch", 1)
    n_sample = traces.sizes["sample"]
    starts = trial * np.arange(n_epoch * n_sample, dtype=float).reshape(n_epoch, n_sample)
    return {"phases": phases, "durations_s": durations, "trial_s": trial, "starts_s": starts,
            "phase_starts_s": np.concatenate([[0.0], np.cumsum(durations)[:-1]])}


def state_series(traces, layout: dict, variable: str = "s"):
    """``(timestamps (T,), values (T, N_units))`` of one traces variable laid on the
    file's clock (see the module docstring for which points are kept)."""
    values = traces[variable].transpose("epoch", "sample", "phase", "time", "unit").values
    times = traces.time.values / 1000.0
    stamps, rows = [], []
    for e in range(values.shape[0]):
        for i in range(values.shape[1]):
            for p, start in enumerate(layout["phase_starts_s"]):
                block = values[e, i, p]
                keep = np.isfinite(block[:, 0])
                if p > 0:
                    keep[0] = False  # the starting state, not a step of this phase
                stamps.append(layout["starts_s"][e, i] + start + times[keep])
                rows.append(block[keep])
    return np.concatenate(stamps), np.concatenate(rows)


def spike_times(traces, layout: dict) -> list:
    """Every unit's spike times on the file's clock (s), sorted, one array per unit."""
    phase_start = {p: layout["phase_starts_s"][k] for k, p in enumerate(layout["phases"])}
    sample_ids = np.asarray(traces.sample.values)
    by_id = np.argsort(sample_ids)
    units, clocks = [], []
    for e in range(traces.sizes["epoch"]):
        ep = traces.isel(epoch=e)
        t = np.asarray(ep.spike_time.values, float)
        real = np.isfinite(t)  # recordings of several epochs pad their lists with NaN
        sample = np.asarray(ep.spike_sample.values)[real].astype(np.int64)
        names, which = np.unique(np.asarray(ep.spike_phase.values)[real].astype(str),
                                 return_inverse=True)
        row = by_id[np.searchsorted(sample_ids[by_id], sample)]
        offset = np.array([phase_start[n] for n in names])[which]
        clocks.append(layout["starts_s"][e, row] + offset + t[real] / 1000.0)
        units.append(np.asarray(ep.spike_unit.values)[real].astype(np.int64))
    unit, clock = np.concatenate(units), np.concatenate(clocks)
    order = np.lexsort((clock, unit))
    counts = np.bincount(unit, minlength=traces.sizes["unit"])
    return np.split(clock[order], np.cumsum(counts)[:-1])


def _predictions(traces, output: str) -> np.ndarray:
    """(n_epoch, n_sample) argmax of the output's state at the free phase's end."""
    free = traces.s.sel(phase="free").where(traces.layer == output, drop=True)
    last = free.isel(time=int(np.flatnonzero(np.isfinite(
        free.isel(epoch=0, sample=0, unit=0).values))[-1]))
    return np.asarray(last.transpose("epoch", "sample", "unit").values).argmax(-1)


def _simulated_age(attrs: dict, traces, layout: dict) -> str:
    """The network's simulated experience when last recorded, as an ISO 8601 duration:
    the training digits of every epoch before it, each lasting one trial."""
    digits = int(attrs.get("train_size") or 0) * int(traces.epoch.values.max())
    return f"PT{digits * layout['trial_s']:.3f}S"


def _settings(attrs: dict) -> dict:
    def plain(v):
        if isinstance(v, np.ndarray):
            return v.tolist()
        if isinstance(v, np.generic):
            return v.item()
        return v
    return {k: plain(v) for k, v in attrs.items()}


def export_nwb(run_dir, path, force: bool = False, spikes: bool = False) -> Path:
    """Write the run's recordings to ``path`` (``.nwb``); see the module docstring.

    Parameters
    ----------
    run_dir : path of a ``cortex-ep train --record N`` run
    force : replace an existing file
    spikes : require spikes (a rate run is refused); spikes of spiking runs are
        written either way

    Returns
    -------
    The path written.  Nothing is left behind on an error.
    """
    run = check_export(run_dir, path, force, spikes)
    _require_pynwb()
    from hdmf.common import DynamicTable, VectorData
    from pynwb import NWBHDF5IO, NWBFile, TimeSeries
    from pynwb.epoch import TimeIntervals
    from pynwb.file import Subject
    from pynwb.misc import Units

    path = Path(path)
    traces = run.traces.load()
    attrs = run.attrs
    layout = trial_layout(traces)
    layers = [str(v) for v in traces.layer.values]
    output = _output_population(attrs, layers)
    labels = traces.label.values.astype(int)
    predictions = _predictions(traces, output)
    created = datetime.fromtimestamp((run.path / "history.nc").stat().st_mtime, timezone.utc)
    neurons = attrs.get("neurons", "rate")
    nwb = NWBFile(
        session_description=(f"cortex_ep simulation: {attrs.get('network_name')} "
                             f"{attrs.get('network')} trained by EP ({attrs.get('estimator')}, "
                             f"{attrs.get('plasticity', 'phase')} rule, {neurons} units, "
                             f"engine {attrs.get('engine')}); recordings of "
                             f"{traces.sizes['sample']} probe digits after epochs "
                             f"{', '.join(str(int(e)) for e in traces.epoch.values)}"),
        identifier=f"cortex_ep:{run.path.resolve()}:{created.isoformat()}",
        session_start_time=created,
        experiment_description=f"network {attrs.get('network')}, projections "
                               f"{attrs.get('projections')}",
        notes=json.dumps(_settings(attrs), sort_keys=True),
        keywords=["equilibrium propagation", "simulation", "rate model" if neurons == "rate"
                  else "spiking network"],
        source_script="cortex_ep", source_script_file_name="cortex-ep export",
        subject=Subject(subject_id=f"{attrs.get('network_name')}-{attrs.get('network')}",
                        description="a simulated network, not an animal: "
                                    f"{attrs.get('network')} units, seed {attrs.get('seed')}",
                        sex="U", age=_simulated_age(attrs, traces, layout),
                        age__reference="birth"))

    for name, what in (("epoch", "training epochs finished before the recording"),
                       ("sample", "index of the digit in the held-out set"),
                       ("label", "the digit's class"),
                       ("prediction", "argmax of the output state at the free phase's end"),
                       ("correct", "prediction == label")):
        nwb.add_trial_column(name=name, description=what)
    phases = TimeIntervals(name="phases", description="the phases of every trial, in the "
                                                      "order they were simulated")
    phases.add_column(name="phase", description="free, nudged (β · sign) or nudged_neg (−β)")
    phases.add_column(name="trial", description="row of the trials table")
    trial_id = 0
    for e, epoch in enumerate(traces.epoch.values):
        for i, sample in enumerate(traces.sample.values):
            start = float(layout["starts_s"][e, i])
            nwb.add_trial(start_time=start, stop_time=start + layout["trial_s"],
                          epoch=int(epoch), sample=int(sample), label=int(labels[i]),
                          prediction=int(predictions[e, i]),
                          correct=bool(predictions[e, i] == labels[i]))
            for p, name in enumerate(layout["phases"]):
                a = start + float(layout["phase_starts_s"][p])
                phases.add_row(start_time=a, stop_time=a + float(layout["durations_s"][p]),
                               phase=name, trial=trial_id)
            trial_id += 1
    nwb.add_time_intervals(phases)

    states = nwb.create_processing_module("states", "unit states over every recorded trial")
    network = nwb.create_processing_module("network", "unit coordinates and final weights")
    for pop in dict.fromkeys(layers):
        sel = traces.isel(unit=np.flatnonzero(np.asarray(layers) == pop))
        network.add(DynamicTable(
            name=f"units_{pop}", description=f"the units of population {pop}, in the "
                                             f"column order of {pop}_state and {pop}_rate",
            columns=[VectorData(name=c, description=what, data=np.asarray(sel[c].values))
                     for c, what in (("layer", "population"), ("column", "cortical column"),
                                     ("index", "index within the population"))]))
        for variable, what in (("s", "neuron state s"),
                               ("rate", f"firing rate {attrs.get('activation')}(s)")):
            stamps, values = state_series(sel, layout, variable)
            states.add(TimeSeries(name=f"{pop}_{'state' if variable == 's' else 'rate'}",
                                  data=values, timestamps=stamps, unit="dimensionless",
                                  description=f"{what} of population {pop} (dimensionless; "
                                              f"columns: network/units_{pop})",
                                  comments=f"{pop}: {sel.sizes['unit']} units"))
    for name, var in run.weights.data_vars.items():
        values = np.asarray(var.values)
        # one row per postsynaptic unit: a matrix in (pre, post) layout is transposed
        rows = values.T if values.ndim == 2 else values
        network.add(DynamicTable(
            name=name, description=f"final {name}, dims {var.dims}; "
                                   + ("row i: postsynaptic unit i, weight[j]: from "
                                      "presynaptic unit j" if values.ndim == 2 else
                                      "one row per entry of the first dimension"),
            columns=[VectorData(name="weight" if values.ndim != 1 else "value",
                                description=f"{name} after epoch {run.history.epoch.values[-1]}",
                                data=rows)]))
    if "spike_time" in traces:
        # spike times are the ends of simulation steps: their resolution is dt
        nwb.units = Units(name="units", description="spike times of every unit",
                          resolution=float(traces.attrs["dt_ms"]) / 1000.0)
        nwb.add_unit_column(name="layer", description="population")
        nwb.add_unit_column(name="column", description="cortical column")
        nwb.add_unit_column(name="index", description="index within the population")
        for u, times in enumerate(spike_times(traces, layout)):
            nwb.add_unit(spike_times=times, layer=layers[u],
                         column=int(traces.column.values[u]), index=int(traces.index.values[u]))
    with warnings.catch_warnings():
        # the temporary name (renamed to ``path`` when complete) does not end in .nwb
        warnings.filterwarnings("ignore", message=".*does not end in '.nwb'")
        with io.atomic_path(path) as tmp, NWBHDF5IO(str(tmp), "w") as writer:
            writer.write(nwb)
    return path
