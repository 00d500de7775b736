"""Recorded spikes as Neo ``SpikeTrain`` objects, and their statistics by Elephant.

Neo is the field's in-memory form of spike trains and Elephant its library of
spike-train statistics.  :func:`spike_trains` turns the spikes of a recording
(a traces Dataset of a spiking run: :func:`cortex_ep.recordings.run.open_run`,
one ``epoch``) into one ``SpikeTrain`` per (sample, phase, unit), silent units
included, each annotated with ``population``, ``column``, ``unit`` (index in
its population), ``sample`` and ``phase``; times are in ms since the phase's
start.  :func:`statistics` gives the mean rate, the mean CV of inter-spike
intervals and the mean Fano factor of spike counts in short bins, through
Elephant.

Needs the optional extra ``pip install 'cortex-ep[nwb]'`` (``neo``, ``elephant``).

Example
-------
>>> from cortex_ep.recordings.run import open_run
>>> from cortex_ep.recordings import spiketrains
>>> run = open_run("runs/if_recorded")                                  # doctest: +SKIP
>>> trains = spiketrains.spike_trains(run.traces.isel(epoch=-1), phase="free")  # doctest: +SKIP
>>> hidden = [t for t in trains if t.annotations["population"] == "h1"]  # doctest: +SKIP
>>> spiketrains.statistics(hidden)                                      # doctest: +SKIP
"""

from __future__ import annotations

import numpy as np
import xarray as xr

#: what to install when Neo or Elephant is missing
EXTRA = "pip install 'cortex-ep[nwb]' (or pip install neo elephant)"


def _require(module: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise ImportError(f"{module} is not installed; spike trains for Neo and Elephant "
                          f"need the optional extra: {EXTRA}") from None


def phase_durations(ds: xr.Dataset) -> dict:
    """``{phase: duration in ms}``: the last time a phase has a state (NaN beyond)."""
    out = {}
    for phase in ds.phase.values:
        s = ds.s.sel(phase=phase).isel(sample=0, unit=0)
        valid = np.flatnonzero(np.isfinite(np.asarray(s)))
        out[str(phase)] = float(ds.time.values[valid[-1]])
    return out


def spike_trains(ds: xr.Dataset, phase: str | None = None, t_start_ms: float | None = None,
                 t_stop_ms: float | None = None, durations_ms: dict | None = None) -> list:
    """One Neo ``SpikeTrain`` per (sample, phase, unit) of one recorded epoch.

    Parameters
    ----------
    ds : xr.Dataset
        A spiking run's traces of one epoch, with ``spike_time``, ``spike_sample``,
        ``spike_phase``, ``spike_unit`` and the ``unit`` coordinates ``layer``,
        ``column``, ``index``.
    phase : str, optional
        Only this phase (``free``, ``nudged``, ``nudged_neg``).
    t_start_ms, t_stop_ms : float, optional
        A window within each phase, ``(t_start, t_stop]`` in ms since its start
        (spike times are the ends of their steps); default: the whole phase.
    durations_ms : dict, optional
        ``{phase: duration}``; default: read from the states ``s`` of ``ds``
        (:func:`phase_durations`).

    Returns
    -------
    list of neo.SpikeTrain, times in ms, in the order sample, phase, unit.
    """
    neo = _require("neo")
    import quantities as pq

    if "spike_time" not in ds:
        raise ValueError("these recordings hold no spikes: spike trains exist for runs "
                         "with --neurons spiking or if, recorded with --record N")
    if "epoch" in ds.dims:
        raise ValueError("give one recorded epoch, e.g. run.traces.isel(epoch=-1)")
    phases = [str(p) for p in ds.phase.values]
    if phase is not None and phase not in phases:
        raise ValueError(f"phase {phase!r} was not recorded; choose one of "
                         f"{', '.join(phases)}")
    durations = phase_durations(ds) if durations_ms is None else durations_ms
    times = np.asarray(ds.spike_time.values, float)
    samples, units = np.asarray(ds.spike_sample.values), np.asarray(ds.spike_unit.values)
    spike_phases = np.asarray(ds.spike_phase.values).astype(str)
    layer, column, index = (np.asarray(ds[c].values) for c in ("layer", "column", "index"))
    trains = []
    for sample in np.asarray(ds.sample.values):
        for ph in ([phase] if phase else phases):
            lo = 0.0 if t_start_ms is None else float(t_start_ms)
            hi = durations[ph] if t_stop_ms is None else float(t_stop_ms)
            # (recordings of several epochs pad their spike lists with NaN)
            here = (samples == sample) & (spike_phases == ph) & (times > lo) & (times <= hi)
            by_unit = {u: np.sort(times[here][units[here] == u])
                       for u in np.unique(units[here])}
            for u in range(len(layer)):
                trains.append(neo.SpikeTrain(
                    by_unit.get(u, np.zeros(0)) * pq.ms, t_start=lo * pq.ms, t_stop=hi * pq.ms,
                    name=f"{layer[u]}[{index[u]}] sample {int(sample)} {ph}",
                    population=str(layer[u]), column=int(column[u]), unit=int(index[u]),
                    sample=int(sample), phase=ph))
    return trains


def statistics(trains, bin_ms: float = 10.0, min_spikes: int = 3) -> dict:
    """Elephant's statistics of a list of spike trains.

    Returns
    -------
    dict with ``rate_hz`` (mean firing rate over all trains, silent ones
    included), ``cv`` (mean coefficient of variation of the inter-spike
    intervals over trains with at least ``min_spikes`` spikes), ``fano``
    (mean Fano factor of the counts in consecutive ``bin_ms`` bins of each
    train with at least ``min_spikes`` spikes; bins ``(a, b]``) and
    ``n_trains``.  NaN where no train qualifies.
    """
    es = _require("elephant.statistics")
    import quantities as pq

    trains = list(trains)
    if not trains:
        raise ValueError("no spike trains given")
    rates = [float(es.mean_firing_rate(t).rescale(pq.Hz).magnitude) for t in trains]
    cvs, fanos = [], []
    for t in trains:
        if len(t) < min_spikes:
            continue
        cvs.append(float(es.cv(es.isi(t).magnitude)))
        fanos.append(float(es.fanofactor(_bins(t, bin_ms))))
    return {"rate_hz": float(np.mean(rates)),
            "cv": float(np.mean(cvs)) if cvs else float("nan"),
            "fano": float(np.nanmean(fanos)) if fanos else float("nan"),
            "n_trains": len(trains)}


def _bins(train, bin_ms: float) -> list:
    """``train`` cut into consecutive ``(a, b]`` bins of ``bin_ms`` (a last shorter bin
    is dropped: a count over less time is not comparable)."""
    import neo
    import quantities as pq

    start, stop = float(train.t_start.rescale(pq.ms)), float(train.t_stop.rescale(pq.ms))
    times = train.rescale(pq.ms).magnitude
    edges = start + bin_ms * np.arange(int(np.floor((stop - start) / bin_ms + 1e-9)) + 1)
    return [neo.SpikeTrain(times[(times > a) & (times <= b)] * pq.ms, t_start=a * pq.ms,
                           t_stop=b * pq.ms) for a, b in zip(edges[:-1], edges[1:])]
