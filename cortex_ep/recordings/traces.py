"""Recorded state traces as xarray Datasets in one vocabulary.

Dimensions ``sample``, ``phase`` (``free``, ``nudged``, ``nudged_neg``),
``time`` (ms since the start of the phase) and ``unit``; coordinates on
``unit``: ``layer`` (population name), ``column`` and ``index`` (within the
population).  Units live in ``.attrs["units"]``.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from ..model.energy import get_activation
from ..model.spec import Network


def unit_coords(net: Network, populations=None) -> dict:
    """``layer``, ``column`` and ``index`` coordinates for the ``unit`` dimension."""
    pops = [net[name] for name in populations] if populations else list(net.dynamic)
    return {
        "layer": ("unit", np.concatenate([[p.name] * p.size for p in pops]).astype(str)),
        "column": ("unit", np.concatenate([p.column_of_units() for p in pops])
                   .astype(np.int64)),
        "index": ("unit", np.concatenate([np.arange(p.size) for p in pops])),
    }


def phase_traces(states: dict, net: Network, free_steps: int, nudged_steps: int,
                 phases, continual: bool = False) -> np.ndarray:
    """Split per-step states into phases.

    Parameters
    ----------
    states : dict population -> (n, steps_per_sample, N) array
        ``s`` after every Euler step of each sample, phases back to back.
    phases : sequence of str
        Phases in the order they were simulated.
    continual : bool
        Each nudged phase carries on from the end of the previous one (the
        continual rule) instead of restarting from the free fixed point.

    Returns
    -------
    (n, n_phases, free_steps + 1, N_total) array
        Each phase starts with its initial state (0 for ``free``, the free
        fixed point — or under ``continual`` the previous phase's end — for the
        nudged phases); entries past a phase's end are NaN.
    """
    n_time = max(free_steps, nudged_steps) + 1
    blocks = []
    for pop in net.dynamic:
        s = states[pop.name]
        n = s.shape[0]
        out = np.full((n, len(phases), n_time, pop.size), np.nan)
        out[:, 0, 0] = 0.0
        out[:, 0, 1:free_steps + 1] = s[:, :free_steps]
        s0 = s[:, free_steps - 1]
        for p in range(1, len(phases)):
            start = free_steps + (p - 1) * nudged_steps
            out[:, p, 0] = s[:, start - 1] if continual else s0
            out[:, p, 1:nudged_steps + 1] = s[:, start:start + nudged_steps]
        blocks.append(out)
    return np.concatenate(blocks, axis=-1)


def traces_dataset(net: Network, trace: np.ndarray, phases, images, labels,
                   activation: str = "hard_sigmoid", sample_ids=None,
                   attrs: dict | None = None) -> xr.Dataset:
    """Assemble a traces Dataset.

    Parameters
    ----------
    trace : (n, n_phases, n_time, N_total) array from :func:`phase_traces`
    images : (n, N_in) array, the clamped inputs
    labels : (n,) int array
    sample_ids : (n,) int array, index of each sample in the held-out set
    """
    n, _, n_time, _ = trace.shape
    rates = get_activation(activation).rho(trace)
    ds = xr.Dataset(
        {
            "s": (("sample", "phase", "time", "unit"), trace,
                  {"units": "1", "long_name": "neuron state s"}),
            "rate": (("sample", "phase", "time", "unit"), np.where(np.isnan(trace), np.nan,
                                                                  rates),
                     {"units": "1", "long_name": f"firing rate {activation}(s)"}),
            "image": (("sample", "pixel"), np.asarray(images, float),
                      {"units": "1", "long_name": "clamped input x"}),
            "label": ("sample", np.asarray(labels, np.int64)),
        },
        coords={
            "sample": np.asarray(sample_ids if sample_ids is not None else np.arange(n),
                                 np.int64),
            "phase": np.asarray(list(phases), dtype=str),
            "time": ("time", np.arange(n_time) * float(net.dt), {"units": "ms"}),
            **unit_coords(net),
        },
        attrs={"units": "time in ms; s and rate dimensionless", "network": net.describe(),
               "dt_ms": float(net.dt), "tau_ms": float(net.tau), **(attrs or {})},
    )
    return ds


#: the spike variables of a traces Dataset (spiking neurons only)
SPIKE_VARIABLES = ("spike_count", "spike_time", "spike_sample", "spike_phase", "spike_unit")


def spike_variables(states: dict, net: Network, free_steps: int, nudged_steps: int,
                    phases, sample_ids) -> xr.Dataset:
    """Recorded spikes in the traces' vocabulary.

    Parameters
    ----------
    states : dict
        ``("spikes", population) -> (n_spikes, 3)`` integer array of (sample,
        step within the sample, unit within the population), as the Brian2
        engine records them.
    sample_ids : (n,) array, the ``sample`` coordinate

    Returns
    -------
    xr.Dataset with ``spike_count`` (sample, phase, time, unit): spikes in
    the step that ends at ``time`` (0 at a phase's start), and over the
    ``spike`` dimension ``spike_time`` (ms since the phase's start),
    ``spike_sample``, ``spike_phase`` and ``spike_unit`` (position on ``unit``).
    """
    n, n_time = len(sample_ids), max(free_steps, nudged_steps) + 1
    starts = np.array([0] + [free_steps + p * nudged_steps for p in range(len(phases) - 1)])
    offsets = np.cumsum([0] + [p.size for p in net.dynamic])
    rows = [np.column_stack([states[("spikes", pop.name)][:, :2],
                             states[("spikes", pop.name)][:, 2] + offsets[k]])
            for k, pop in enumerate(net.dynamic)]
    sample, step, unit = np.concatenate(rows).T if rows else np.zeros((3, 0), np.int64)
    phase = np.searchsorted(starts, step, side="right") - 1
    time_index = step - starts[phase] + 1
    counts = np.zeros((n, len(phases), n_time, offsets[-1]), np.int16)
    np.add.at(counts, (sample, phase, time_index, unit), 1)
    order = np.lexsort((time_index, phase, sample))
    dt = float(net.dt)
    return xr.Dataset(
        {"spike_count": (("sample", "phase", "time", "unit"), counts,
                         {"units": "1", "long_name": "spikes in the step ending at time"}),
         "spike_time": ("spike", time_index[order] * dt,
                        {"units": "ms", "long_name": "spike time since the phase's start"}),
         "spike_sample": ("spike", np.asarray(sample_ids)[sample[order]]),
         "spike_phase": ("spike", np.asarray(list(phases), dtype=str)[phase[order]]),
         "spike_unit": ("spike", unit[order].astype(np.int64),
                        {"long_name": "position of the spiking unit on the unit dimension"})},
        # an index, so that recordings of several epochs align along ``spike``
        coords={"spike": np.arange(len(order))})
