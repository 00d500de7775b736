"""Per-epoch checkpoints: everything a run needs to continue exactly where it stopped.

``checkpoint.nc`` in a run directory holds, as one atomically written file,

- the weights and biases after the last finished epoch (as in ``weights.nc``),
- the history of the finished epochs (as in ``history.nc``),
- the state of the loop's random generator (sample order, β signs) and of
  the engine's noise generator, as JSON in ``attrs``,
- the network and run settings, to refuse resuming with other ones.

Training uses plain SGD, so there is no optimiser state beyond the weights.
Because each epoch is a deterministic function of (weights, generator states),
resuming from the checkpoint of epoch ``e`` gives exactly the weights of an
uninterrupted run, whatever happened to the interrupted epoch ``e + 1``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr

from .. import io

FILENAME = "checkpoint.nc"
HISTORY_VARS = ("train_loss", "train_accuracy", "test_loss", "test_accuracy", "seconds")
#: settings that must not change between a run and its resumption
IDENTITY = ("network", "network_name", "projections", "engine", "estimator", "beta",
            "batch_size", "seed", "free_steps", "nudged_steps", "noise", "activation",
            "dtype", "bp_activation", "bp_loss", "data", "train_size", "test_size", "model",
            "plasticity", "feedback", "neurons", "spike_r_max_hz", "spike_tau_syn_ms",
            "spike_tau_trace_ms", "spike_dt_ms", "spike_free_ms", "spike_nudged_ms", "shift",
            "spike_readout", "spike_threshold", "spike_tau_m_ms", "spike_refractory_ms",
            "spike_membrane_noise", "spike_membrane")
#: what a checkpoint written before a setting existed had instead
BEFORE = {"plasticity": "phase", "feedback": "", "neurons": "rate", "shift": 0,
          "spike_readout": "trace"}


class CheckpointError(ValueError):
    """A checkpoint that cannot continue this run; the message says why and what to do."""


@dataclass
class Checkpoint:
    """The state after ``epoch`` finished epochs.

    Attributes
    ----------
    epoch : int
    weights : xr.Dataset, as written by :func:`cortex_ep.learning.weights.weights_dataset`
    history : xr.Dataset over dim ``epoch`` (``epoch`` rows)
    loop_rng : dict, ``numpy.random.Generator.bit_generator.state``
    engine_state : dict, from the engine's ``get_state()`` (may be empty)
    attrs : dict, the run's settings
    """

    epoch: int
    weights: xr.Dataset
    history: xr.Dataset
    loop_rng: dict
    engine_state: dict
    attrs: dict


def save(directory, ck: Checkpoint) -> Path:
    """Write ``checkpoint.nc`` atomically: a reader sees the previous one or this one."""
    ds = ck.weights.copy()
    for name in HISTORY_VARS:
        ds[f"history_{name}"] = ("epoch", ck.history[name].values,
                                 dict(ck.history[name].attrs))
    ds = ds.assign_coords(epoch=ck.history.epoch.values)
    ds.attrs = {**ck.attrs, "completed_epochs": int(ck.epoch),
                "loop_rng": json.dumps(ck.loop_rng),
                "engine_state": json.dumps(ck.engine_state)}
    return io.write_dataset(ds, Path(directory) / FILENAME)


def load(directory) -> Checkpoint:
    """Read the checkpoint of a run directory; :class:`CheckpointError` if absent or bad."""
    path = Path(directory) / FILENAME
    if not path.is_file():
        raise CheckpointError(f"--resume {directory}: no {FILENAME} there; give the --out "
                              "directory of a cortex-ep train run that finished at least "
                              "one epoch")
    try:
        ds = io.read_dataset(path)
        attrs = dict(ds.attrs)
        epoch = int(attrs.pop("completed_epochs"))
        loop_rng = json.loads(attrs.pop("loop_rng"))
        engine_state = json.loads(attrs.pop("engine_state"))
    except (OSError, KeyError, ValueError) as err:
        raise CheckpointError(f"{path} cannot be read as a checkpoint ({err}); it was not "
                              "written by cortex-ep train: start a new run") from None
    history = xr.Dataset(
        {name: ("epoch", ds[f"history_{name}"].values, dict(ds[f"history_{name}"].attrs))
         for name in HISTORY_VARS},
        coords={"epoch": ds.epoch.values})
    weights = ds.drop_vars([f"history_{n}" for n in HISTORY_VARS] + ["epoch"])
    weights.attrs = {}
    return Checkpoint(epoch, weights, history, loop_rng, engine_state, attrs)


def check_compatible(ck: Checkpoint, attrs: dict, directory) -> None:
    """Raise :class:`CheckpointError` naming the first setting that differs."""
    for key in IDENTITY:
        if key not in attrs and key not in ck.attrs:
            continue
        old, new = ck.attrs.get(key, BEFORE.get(key)), attrs.get(key, BEFORE.get(key))
        if isinstance(old, np.ndarray) or isinstance(new, np.ndarray):
            same = np.array_equal(np.asarray(old), np.asarray(new))
        else:
            same = _plain(old) == _plain(new)
        if not same:
            what = "network" if key in ("network", "network_name", "projections",
                                        "model") else "setting"
            raise CheckpointError(
                f"--resume {directory}: the checkpoint was written with {key} = "
                f"{_plain(old)!r}, this run has {key} = {_plain(new)!r}; a {what} cannot "
                "change in the middle of a "
                "run: resume with the original settings, or start a new run with --out")
    lrs_old = np.asarray(ck.attrs.get("learning_rates", []), float)
    lrs_new = np.asarray(attrs.get("learning_rates", []), float)
    if lrs_old.shape != lrs_new.shape or not np.allclose(lrs_old, lrs_new, rtol=0, atol=0):
        raise CheckpointError(f"--resume {directory}: the checkpoint's learning rates "
                              f"{lrs_old.tolist()} differ from this run's {lrs_new.tolist()}; "
                              "resume with the original --lr")


def _plain(value):
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    return value
