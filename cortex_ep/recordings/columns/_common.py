"""Checks and reductions shared by the column analyses."""

from __future__ import annotations

import numpy as np
import xarray as xr

REQUIRED_PHASES = ("free", "nudged")


def _check_traces(traces: xr.Dataset, layer: str | None = None) -> None:
    """Raise ``ValueError`` unless ``traces`` can be analysed (for ``layer``)."""
    if "epoch" not in traces.dims:
        raise ValueError("traces have no 'epoch' dimension; give a single recording as "
                         "traces.expand_dims(epoch=[e])")
    missing = [p for p in REQUIRED_PHASES if p not in traces.phase.values]
    if missing:
        raise ValueError(f"traces lack phase(s) {', '.join(missing)}; column analyses need "
                         f"both {' and '.join(REQUIRED_PHASES)}")
    if layer is not None and layer not in traces.layer.values:
        present = ", ".join(dict.fromkeys(str(v) for v in traces.layer.values))
        raise ValueError(f"layer {layer!r} is not in the traces; recorded layers: {present}")


def _labels(traces: xr.Dataset) -> xr.DataArray:
    """The digit of every sample, dim ``sample``.

    ``expand_dims`` or ``concat`` along ``epoch`` may have given ``label`` an
    ``epoch`` dimension; the probe set must be the same at every epoch, or
    comparisons across epochs would mix different samples.
    """
    label = traces["label"]
    if "epoch" in label.dims:
        if not (label == label.isel(epoch=0)).all():
            raise ValueError("the probe samples' labels differ between epochs; record the "
                             "same samples at every epoch")
        label = label.isel(epoch=0, drop=True)
    return label.astype(np.int64)


def _layer_rates(traces: xr.Dataset, layer: str) -> xr.DataArray:
    """``rate`` restricted to the units of ``layer``."""
    _check_traces(traces, layer)
    return traces["rate"].isel(unit=np.flatnonzero(traces.layer.values == layer))


def _last_valid(da: xr.DataArray, dim: str = "time") -> xr.DataArray:
    """The last non-NaN value along ``dim`` (NaN where all are NaN).

    Written with numpy because ``DataArray.ffill`` needs bottleneck, which
    the environment need not have.
    """
    def pick(values):
        valid = ~np.isnan(values)
        last = values.shape[-1] - 1 - np.argmax(valid[..., ::-1], axis=-1)
        out = np.take_along_axis(values, last[..., None], axis=-1)[..., 0]
        return np.where(valid.any(axis=-1), out, np.nan)

    return xr.apply_ufunc(pick, da, input_core_dims=[[dim]], keep_attrs=True,
                          dask="parallelized", output_dtypes=[float])


def final_rates(traces: xr.Dataset, layer: str | None = None) -> xr.DataArray:
    """Firing rate at the end of every phase.

    The nudged phases are shorter than the free phase and padded with NaN,
    so the end of a phase is its last non-NaN time, not the last ``time``.

    Parameters
    ----------
    traces : xr.Dataset
        Recorded traces (see the module docstring).
    layer : str, optional
        Keep only this population's units.

    Returns
    -------
    xr.DataArray
        Dims (``epoch``, ``sample``, ``phase``, ``unit``), dimensionless
        rate ρ(s) in [0, 1], with the ``unit`` coordinates of ``traces``.
    """
    if layer is None:
        _check_traces(traces)
        rate = traces["rate"]
    else:
        rate = _layer_rates(traces, layer)
    out = _last_valid(rate).transpose("epoch", "sample", "phase", "unit")
    return out.rename("final_rate").assign_attrs(units="1",
                                                 long_name="rate at the end of the phase")


def _column_mean(da: xr.DataArray) -> xr.DataArray:
    """Average over the units of each column: dim ``unit`` becomes ``column``."""
    return da.groupby("column").mean("unit")


def _column_final_rates(traces: xr.Dataset, layer: str) -> xr.DataArray:
    """Column-mean final rate, dims (``epoch``, ``sample``, ``phase``, ``column``)."""
    return _column_mean(final_rates(traces, layer))


def _pearson(a: xr.DataArray, b: xr.DataArray, dim: str) -> xr.DataArray:
    """Pearson correlation along ``dim``; NaN if either is constant or has a NaN."""
    a_centred = a - a.mean(dim, skipna=False)
    b_centred = b - b.mean(dim, skipna=False)
    covariance = (a_centred * b_centred).sum(dim, skipna=False)
    scale = np.sqrt((a_centred ** 2).sum(dim, skipna=False)
                    * (b_centred ** 2).sum(dim, skipna=False))
    return covariance / scale.where(scale > 0)
