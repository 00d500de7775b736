"""What columns respond to: digit tuning, selectivity, mutual information, similarity."""

from __future__ import annotations

import numpy as np
import xarray as xr

from ._common import _column_final_rates, _labels, _pearson


def tuning(traces: xr.Dataset, layer: str) -> xr.DataArray:
    """Column × digit tuning matrix from the free phase.

    Parameters
    ----------
    traces : xr.Dataset
        Recorded traces.
    layer : str
        Population name.

    Returns
    -------
    xr.DataArray
        Dims (``epoch``, ``column``, ``digit``): mean free-phase final rate
        (dimensionless) of the column's units over the probe samples of each
        digit.  ``digit`` holds the digits present among the probe samples.
    """
    free = _column_final_rates(traces, layer).sel(phase="free", drop=True)
    by_digit = free.assign_coords(digit=("sample", _labels(traces).values))
    out = by_digit.groupby("digit").mean("sample")
    return out.transpose("epoch", "column", "digit").rename("tuning").assign_attrs(
        units="1", long_name="mean free-phase final rate per digit")


def preferred_digit(tuning: xr.DataArray) -> xr.DataArray:
    """The digit each column responds to most.

    Parameters
    ----------
    tuning : xr.DataArray
        Output of :func:`tuning`, dims (..., ``digit``).

    Returns
    -------
    xr.DataArray
        Int, dims of ``tuning`` without ``digit``.  Ties go to the lowest
        digit; a silent column (no rate above 0) has no preference: -1.
    """
    silent = ~(tuning > 0).any("digit")
    best = tuning.digit.values[tuning.fillna(-np.inf).argmax("digit").values]
    best = xr.DataArray(best, dims=silent.dims, coords=silent.coords)
    return best.where(~silent, -1).astype(np.int64).rename("preferred_digit").assign_attrs(
        units="1", long_name="digit of the highest free-phase rate (-1: silent)")


def selectivity_index(tuning: xr.DataArray) -> xr.DataArray:
    """How exclusively each column responds to its preferred digit.

    (r_pref − r_other) / (r_pref + r_other), with r_pref the highest entry
    of the tuning curve and r_other the mean of the other digits' entries.
    Rates are ≥ 0, so the index lies in [0, 1]: 0 for a flat tuning curve,
    1 for a column silent for every digit but one.  A silent column gets 0.

    Parameters
    ----------
    tuning : xr.DataArray
        Output of :func:`tuning`, dims (..., ``digit``), at least two digits.

    Returns
    -------
    xr.DataArray
        Dimensionless, dims of ``tuning`` without ``digit``.
    """
    n_digits = tuning.sizes["digit"]
    if n_digits < 2:
        raise ValueError("the selectivity index needs at least two digits among the probe "
                         f"samples; got {n_digits}")
    preferred = tuning.max("digit")
    other = (tuning.sum("digit") - preferred) / (n_digits - 1)
    total = preferred + other
    index = ((preferred - other) / total.where(total > 0)).fillna(0.0)
    return index.rename("selectivity").assign_attrs(
        units="1", long_name="(r_pref - mean r_other) / (r_pref + mean r_other)")


def _plugin_mutual_information(response, labels, bins):
    """Plug-in MI in bits between ``response`` (..., n) and ``labels`` (n,), with ``bins``
    equal-width bins spanning each response's observed range."""
    lo = np.nanmin(response, axis=-1, keepdims=True) if response.size else response
    span = np.nanmax(response, axis=-1, keepdims=True) - lo if response.size else response
    scaled = (np.nan_to_num(response) - lo) / np.where(span > 0, span, 1.0)
    binned = np.clip(np.floor(scaled * bins).astype(np.int64), 0, bins - 1)
    in_bin = (binned[..., None] == np.arange(bins)).astype(float)        # (..., n, B)
    in_class = (labels[:, None] == np.unique(labels)).astype(float)      # (n, K)
    joint = np.einsum("...nb,nk->...bk", in_bin, in_class) / len(labels)
    independent = joint.sum(-1, keepdims=True) * joint.sum(-2, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(joint > 0, joint * np.log2(joint / independent), 0.0)
    return np.where(np.isnan(response).any(axis=-1), np.nan, terms.sum(axis=(-2, -1)))


def mutual_information(traces: xr.Dataset, layer: str, bins: int = 4) -> xr.DataArray:
    """Mutual information between each column's free-phase rate and the digit.

    The column's mean free-phase final rate is discretised into ``bins``
    equal-width bins spanning the rates that column takes over the probe
    samples at that epoch (min to max): column means of a trained network
    stay far below 1 (0.01–0.31 measured for ``cortical_columns``), so bins
    fixed on [0, 1] would put nearly every sample in one bin; equal-count
    bins are ill defined when many rates sit exactly at 0, as they do with
    the hard sigmoid.  A constant column carries 0 bits.  The plug-in
    estimator Σ p(r, d) log₂ p(r, d) / (p(r) p(d)) over the empirical joint
    histogram is then applied.

    Parameters
    ----------
    traces : xr.Dataset
        Recorded traces.
    layer : str
        Population name.
    bins : int
        Number of equal-width rate bins over the observed range.

    Returns
    -------
    xr.DataArray
        Dims (``epoch``, ``column``), in bits, between 0 and
        min(log₂ bins, H(digit)).

    Notes
    -----
    The plug-in estimator is biased upward: for N samples, B occupied rate
    bins and K digits, by about (B − 1)(K − 1) / (2 N ln 2) bits when the
    rate carries no information (Miller–Madow).  With 100 probe samples, 10
    digits and 4 bins that is ≈ 0.19 bits; compare columns and epochs at
    equal N and ``bins``, or against label-shuffled controls.
    """
    if not isinstance(bins, (int, np.integer)) or bins < 1:
        raise ValueError(f"bins must be a positive integer; got {bins!r}")
    free = _column_final_rates(traces, layer).sel(phase="free", drop=True)
    mi = xr.apply_ufunc(_plugin_mutual_information, free, kwargs=dict(
        labels=_labels(traces).values, bins=int(bins)), input_core_dims=[["sample"]],
        dask="parallelized", output_dtypes=[float])
    return mi.transpose("epoch", "column").rename("mutual_information").assign_attrs(
        units="bit", long_name=f"plug-in mutual information of column rate ({bins} "
        "equal-width bins over its range) and digit")


def representational_similarity(traces: xr.Dataset, layer: str) -> xr.Dataset:
    """How alike the columns' free-phase responses to the probe samples are.

    Parameters
    ----------
    traces : xr.Dataset
        Recorded traces.
    layer : str
        Population name.

    Returns
    -------
    xr.Dataset
        ``similarity`` (``epoch``, ``column``, ``column_other``): Pearson
        correlation across probe samples of two columns' mean free-phase
        final rates (NaN involving a column whose response is constant);
        ``mean_similarity`` (``epoch``): the mean of its off-diagonal entries,
        ignoring NaN (NaN for a single column).  Both dimensionless.
    """
    free = _column_final_rates(traces, layer).sel(phase="free", drop=True)
    similarity = _pearson(free, free.rename(column="column_other"), "sample")
    similarity = similarity.transpose("epoch", "column", "column_other")
    off_diagonal = similarity.where(similarity.column != similarity.column_other)
    return xr.Dataset({
        "similarity": similarity.assign_attrs(
            units="1", long_name="correlation of column responses across samples"),
        "mean_similarity": off_diagonal.mean(["column", "column_other"]).assign_attrs(
            units="1", long_name="mean off-diagonal response correlation"),
    })
