"""Open a training run's directory as xarray objects for your own analyses.

A run directory written by ``cortex-ep train --out DIR`` holds

==========================  ==================================================
``history.nc``              loss / accuracy per epoch
``weights.nc``              the weights after the last finished epoch
``checkpoint.nc``           what ``--resume`` needs (weights, history, RNG state)
``traces/epoch_NNNN.nc``    with ``--record N``: free / nudged traces of the probe
                            digits after epoch NNNN (0 = before learning)
``weights/epoch_NNNN.nc``   the weights at the moment of each recording
==========================  ==================================================

:func:`open_run` gathers them with their coordinates: traces concatenated
along ``epoch`` (lazily, one chunk per recorded epoch, so a long recording
need not fit in memory), and the weight history likewise.

Example
-------
>>> from cortex_ep.recordings.run import open_run
>>> run = open_run("runs/columns")                              # doctest: +SKIP
>>> run.history.test_accuracy.to_series()                       # doctest: +SKIP
>>> free = run.traces.rate.sel(phase="free")                    # doctest: +SKIP
>>> free.isel(time=-1).groupby("column").mean("unit")           # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import xarray as xr

from .. import io
from . import traces


@dataclass
class Run:
    """The xarray contents of a run directory.

    Attributes
    ----------
    path : Path
    history : xr.Dataset over ``epoch``
    weights : xr.Dataset, the weights after the last finished epoch
    traces : xr.Dataset or None
        ``s`` and ``rate`` with dims (``epoch``, ``sample``, ``phase``, ``time``,
        ``unit``); ``label`` and ``image`` per ``sample``; coordinates ``layer``,
        ``column``, ``index`` on ``unit`` and ``time`` in ms.  ``None`` without
        recordings.
    weight_history : xr.Dataset or None
        The weights at each recorded epoch, dim ``epoch`` first.
    """

    path: Path
    history: xr.Dataset
    weights: xr.Dataset
    traces: xr.Dataset | None
    weight_history: xr.Dataset | None

    @property
    def attrs(self) -> dict:
        """The run's settings (network, estimator, engine, data, ...)."""
        return dict(self.history.attrs)


def open_run(path, chunks: bool = True) -> Run:
    """Open the run directory ``path``.

    Parameters
    ----------
    chunks : bool
        Open the recordings lazily with dask (one chunk per recorded epoch);
        ``False`` loads them into memory.
    """
    path = Path(path)
    for name in ("history.nc", "weights.nc"):
        if not (path / name).is_file():
            raise FileNotFoundError(f"{path} has no {name}: give the --out directory of a "
                                    "cortex-ep train run that finished at least one epoch")
    return Run(path, io.read_dataset(path / "history.nc"), io.read_dataset(path / "weights.nc"),
               _concat_epochs(path / "traces", ("s", "rate", *traces.SPIKE_VARIABLES), chunks),
               _concat_epochs(path / "weights", None, chunks))


def _concat_epochs(directory: Path, per_epoch, chunks: bool):
    """The ``epoch_NNNN.nc`` files of ``directory`` along a new ``epoch`` dim.

    ``per_epoch``: the variables that differ between epochs (others are
    taken from the first file); ``None``: all of them.
    """
    files = sorted(directory.glob("epoch_*.nc"))
    if not files:
        return None
    opened = [xr.open_dataset(f, engine=io.NETCDF_ENGINE, decode_timedelta=False,
                              chunks=-1 if chunks else None) for f in files]
    names = list(opened[0].data_vars) if per_epoch is None else \
        [name for name in per_epoch if name in opened[0]]
    # spike lists differ in length between epochs: "outer" pads them with NaN
    stacked = xr.concat([ds[names] for ds in opened], dim="epoch", join="outer",
                        coords="minimal", compat="override", combine_attrs="override")
    # what does not change between epochs (labels, images) is small: in memory
    rest = opened[0].drop_vars(names + ["epoch", "spike"], errors="ignore").load()
    merged = xr.merge([stacked, rest], compat="override", join="exact",
                      combine_attrs="override")
    merged.attrs = dict(opened[0].attrs)
    # coordinates are small and used for grouping: keep them in memory
    merged = merged.assign_coords({k: merged[k].load() for k in merged.coords})
    return merged if chunks else merged.load()
