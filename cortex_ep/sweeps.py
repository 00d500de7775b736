"""Grids of runs on dask.distributed, one netCDF file per finished cell.

A sweep is a grid ``{dimension: values}`` and a *cell function* that takes one
combination as keyword arguments and returns an ``xarray.Dataset`` (without
the grid's dimensions).  :func:`run_sweep` submits every cell that has no file
yet to a dask cluster — a ``LocalCluster`` sized to the machine, or an
existing scheduler — writes each result atomically as soon as it arrives and
finally combines all cells into one Dataset whose dimensions are the grid's.
A sweep that is killed keeps its finished cells: run it again and only the
missing ones are computed.  One sweep at a time writes a cell directory: a
second is refused at once (:class:`~cortex_ep.io.DirectoryInUse`) while the
first runs, and a killed one leaves nothing that blocks the next.

The cell function must be importable by the workers (defined in a module, not
interactively), or defined in the ``__main__`` of a script (cloudpickle ships
it by value).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import sys
from pathlib import Path
from typing import Callable

import numpy as np
import xarray as xr

from . import io


def cell_key(params: dict) -> str:
    """A stable file name for one combination of grid values."""
    text = json.dumps({k: _plain(v) for k, v in sorted(params.items())}, sort_keys=True)
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def _plain(value):
    if isinstance(value, np.generic):
        return value.item()
    return value


def cells(grid: dict) -> list[dict]:
    """Every combination of the grid's values, in grid order."""
    for dim, values in grid.items():
        if len(values) == 0:
            raise ValueError(f"sweep dimension {dim!r} has no values")
        if len(set(map(str, values))) != len(values):
            raise ValueError(f"sweep dimension {dim!r} repeats a value: {list(values)}")
    names = list(grid)
    return [dict(zip(names, combo)) for combo in itertools.product(*grid.values())]


def make_client(scheduler: str | None = None, n_workers: int | None = None):
    """A dask client: to ``scheduler`` if given, else a LocalCluster of one
    single-threaded process per core."""
    from dask.distributed import Client, LocalCluster

    if scheduler:
        return Client(scheduler)
    n = n_workers or os.cpu_count() or 1
    cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                           dashboard_address=None)
    return Client(cluster)


def run_sweep(grid: dict, cell_fn: Callable[..., xr.Dataset], cell_dir,
              scheduler: str | None = None, n_workers: int | None = None,
              progress: bool = True, client=None, fixed: dict | None = None) -> xr.Dataset:
    """Compute every missing cell of ``grid`` and return the combined Dataset.

    Parameters
    ----------
    grid : dict
        ``{dimension: list of values}``; every value must be a netCDF-friendly
        scalar (number or string).
    cell_fn : callable
        ``cell_fn(**cell, **fixed) -> xr.Dataset``.
    cell_dir : path
        Where finished cells live (``<key>.nc``); reused on the next call.
    fixed : dict, optional
        Extra keyword arguments passed to every cell (not a dimension).
    client : dask.distributed.Client, optional
        Use this client instead of making one.

    Raises
    ------
    cortex_ep.io.DirectoryInUse
        Another process is running a sweep into ``cell_dir``.
    """
    cell_dir = Path(cell_dir)
    cell_dir.mkdir(parents=True, exist_ok=True)
    with io.exclusive(cell_dir / io.LOCK_NAME, f"sweep directory {cell_dir}", SWEEP_IN_USE):
        _compute_missing(grid, cell_fn, cell_dir, scheduler, n_workers, progress, client,
                         fixed)
        return combine(grid, cell_dir)


#: what a sweep refused a directory that another sweep holds can do
SWEEP_IN_USE = ("wait for that sweep to end (its finished cells stay), or stop it; to run "
                "beside it, give another --out")


def _compute_missing(grid, cell_fn, cell_dir: Path, scheduler, n_workers, progress, client,
                     fixed) -> None:
    from tqdm.auto import tqdm

    todo = [c for c in cells(grid) if not (cell_dir / f"{cell_key(c)}.nc").is_file()]
    total = len(cells(grid))
    if todo:
        own = client is None
        client = client or make_client(scheduler, n_workers)
        try:
            futures = {client.submit(cell_fn, **c, **(fixed or {}), pure=False): c
                       for c in todo}
            from dask.distributed import as_completed

            bar = tqdm(total=total, initial=total - len(todo), desc="sweep", unit="cell",
                       disable=not progress)
            for future in as_completed(futures):
                params = futures[future]
                ds = future.result()
                ds = ds.assign_attrs(**{f"cell_{k}": _plain(v) for k, v in params.items()})
                io.write_dataset(ds, cell_dir / f"{cell_key(params)}.nc")
                bar.update()
            bar.close()
        finally:
            if own:
                cluster = getattr(client, "cluster", None)
                client.close()
                if cluster is not None:
                    cluster.close()


def combine(grid: dict, cell_dir) -> xr.Dataset:
    """Stack the cells of ``grid`` found in ``cell_dir`` along the grid's dimensions."""
    cell_dir = Path(cell_dir)
    names = list(grid)

    def load(params):
        ds = io.read_dataset(cell_dir / f"{cell_key(params)}.nc")
        ds.attrs = {k: v for k, v in ds.attrs.items() if not k.startswith("cell_")}
        return ds

    def stack(level: int, prefix: dict):
        if level == len(names):
            return load(prefix)
        dim = names[level]
        parts = [stack(level + 1, {**prefix, dim: v}) for v in grid[dim]]
        return xr.concat(parts, dim=dim, combine_attrs="drop_conflicts").assign_coords(
            {dim: list(grid[dim])})

    return stack(0, {})


def add_sweep_arguments(parser, default_out: str, seeds: int | None = None,
                        epochs: int | None = None) -> None:
    """The options every analysis script shares (``--seeds``/``--epochs`` when
    a default is given)."""
    from pathlib import Path as _Path

    parser.add_argument("--quick", action="store_true",
                        help="a small version that finishes in under a minute")
    parser.add_argument("--out", type=_Path, default=_Path(default_out),
                        help="directory for the netCDF data, figures and finished cells")
    parser.add_argument("--scheduler", default=None, metavar="ADDRESS",
                        help="an existing dask scheduler (default: a LocalCluster sized "
                             "to this machine)")
    parser.add_argument("--workers", type=int, default=None,
                        help="LocalCluster worker processes (default: one per core)")
    parser.add_argument("--no-progress", action="store_true")
    if seeds is not None:
        parser.add_argument("--seeds", type=int, default=seeds, help="seeds per setting")
    if epochs is not None:
        parser.add_argument("--epochs", type=int, default=epochs, help="training epochs")


#: named training algorithms compared by the analyses: engine and EP estimator.
#: (The sweep dimension is called ``algorithm``: ``method`` is an argument of
#: xarray's ``sel``.)
ALGORITHMS = {
    "EP random-sign": {"engine": "torch", "estimator": "random-sign"},
    "EP one-sided": {"engine": "torch", "estimator": "one-sided"},
    "EP symmetric": {"engine": "torch", "estimator": "symmetric"},
    "recurrent BP": {"engine": "rbp", "estimator": "random-sign"},
    "feedforward BP": {"engine": "backprop", "estimator": "random-sign"},
}


def training_cell(algorithm: str, seed: int, batch_size: int | None = None,
                  lr: float = 1.0, *, model: str = "two_layer", epochs: int = 10,
                  train_size: int | None = None, test_size: int | None = None,
                  validation: int | None = None) -> xr.Dataset:
    """Train one named algorithm (:data:`ALGORITHMS`) and return its history.

    ``lr`` multiplies the model's validated learning rates for the algorithm's
    engine; other settings come from the model's ``TRAINING``.
    """
    import torch

    from . import data
    from .learning.loop import TrainConfig, train
    from .model.estimators import Estimator
    from .model.relaxation import Relaxation
    from .model.spec import with_learning_rates
    from .models import load as load_model
    from .models import tuned_learning_rates

    torch.set_num_threads(1)
    spec = ALGORITHMS[algorithm]
    module = load_model(model)
    defaults = module.TRAINING
    net = module.network()
    lrs = (tuned_learning_rates(module, spec["engine"], beta=defaults["beta"])
           or [p.lr for p in net.projections])
    net = with_learning_rates(net, [lr * rate for rate in lrs])
    config = TrainConfig(epochs=epochs, batch_size=batch_size or defaults["batch_size"],
                         seed=seed, estimator=Estimator(spec["estimator"], defaults["beta"]),
                         relaxation=Relaxation(defaults["free_steps"],
                                               defaults["nudged_steps"]),
                         engine=spec["engine"])
    digits = data.load(train_size=train_size, test_size=test_size, seed=0)
    if validation:
        digits = data.validation_split(digits, validation, seed=0)
    history, _, _ = train(net, digits, config, progress=False)
    return history


def epochs_to_reach(accuracy: xr.DataArray, level: float) -> xr.DataArray:
    """First epoch whose accuracy reaches ``level`` (NaN where it never does),
    reducing the ``epoch`` dimension."""
    reached = accuracy >= level
    first = reached.argmax("epoch") + accuracy.epoch.values[0]
    return first.where(reached.any("epoch"))


def run_analysis(name: str, grid: dict, cell_fn: Callable, out, fixed: dict, plot: Callable,
                 summarize: Callable, *, scheduler: str | None = None,
                 workers: int | None = None, progress: bool = True,
                 attrs: dict | None = None) -> xr.Dataset:
    """Run an analysis sweep and write ``<name>.nc``, its figures and a summary.

    ``plot(ds, out)`` returns the figure path(s); ``summarize(ds)`` the lines
    to print.
    """
    import time

    start = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    try:
        with io.exclusive(out / io.LOCK_NAME, f"analysis directory {out}", SWEEP_IN_USE):
            ds = run_sweep(grid, cell_fn, out / "cells", scheduler, workers,
                           progress=progress, fixed=fixed)
            ds.attrs.update(attrs or {})
            io.write_dataset(ds, out / f"{name}.nc")
            figures = plot(ds, out)
    except io.DirectoryInUse as err:  # the script's user gets one line, as from cortex-ep
        print(f"{name}: error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    figures = figures if isinstance(figures, (list, tuple)) else [figures]
    print("\n".join(summarize(ds)))
    print(f"data: {out / f'{name}.nc'}; figures: {', '.join(str(f) for f in figures)}; "
          f"{time.perf_counter() - start:.0f} s")
    return ds
