"""What a run leaves behind, as xarray objects, and how to look at it.

- :mod:`~cortex_ep.recordings.traces` — state traces in the data vocabulary
  (``sample``, ``phase``, ``time``, ``unit``);
- :mod:`~cortex_ep.recordings.run` — :func:`open_run`: a run directory as xarray;
- :mod:`~cortex_ep.recordings.figures` — a run's figures (``cortex-ep plot``);
- :mod:`~cortex_ep.recordings.columns` — column-level analyses.
"""
