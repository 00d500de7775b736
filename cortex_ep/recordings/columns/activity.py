"""Column activity and EP's local learning signal: free and nudged rates and their difference."""

from __future__ import annotations

import xarray as xr

from ._common import (
    _column_final_rates,
    _column_mean,
    _labels,
    _last_valid,
    _layer_rates,
)
from .tuning import preferred_digit, tuning


def column_activity(traces: xr.Dataset, layer: str) -> xr.DataArray:
    """Mean final rate of each column in each phase.

    Parameters
    ----------
    traces : xr.Dataset
        Recorded traces.
    layer : str
        Population name; one without columns is a single column 0.

    Returns
    -------
    xr.DataArray
        Dims (``epoch``, ``phase``, ``column``), dimensionless rate averaged
        over the probe samples and the column's units.
    """
    activity = _column_final_rates(traces, layer).mean("sample")
    return activity.transpose("epoch", "phase", "column").rename("activity").assign_attrs(
        units="1", long_name=f"mean final rate of each {layer} column")


def phase_difference(traces: xr.Dataset, layer: str) -> xr.Dataset:
    """Nudged − free rate difference of each column: EP's local learning signal.

    At each time t of the nudged phase, the column-mean rate ρ(s^β(t)) minus
    the column-mean rate at the free fixed point ρ(s⁰) of the same sample.
    The nudged phase starts from s⁰, so the time course starts at 0.  Only
    ``nudged`` (toward the target) is used; ``nudged_neg`` is ignored.

    Parameters
    ----------
    traces : xr.Dataset
        Recorded traces.
    layer : str
        Population name.

    Returns
    -------
    xr.Dataset
        ``difference`` (``epoch``, ``column``, ``time``): the mean over samples
        of the signed difference; ``abs_difference`` (same dims): the mean
        over samples of its magnitude (signs differ between samples, so the
        signed mean can cancel); ``final_difference`` (``epoch``, ``sample``,
        ``column``): the difference at the end of the nudged phase.  Rates are
        dimensionless; ``time`` is in ms since the start of the nudged phase
        and covers only the nudged phase's recorded times.
    """
    rate = _layer_rates(traces, layer)
    free_end = _last_valid(rate.sel(phase="free", drop=True))
    per_sample = _column_mean(rate.sel(phase="nudged", drop=True) - free_end)
    per_sample = per_sample.dropna("time", how="all")  # the nudged phase is shorter
    time_dims = ("epoch", "column", "time")
    return xr.Dataset({
        "difference": per_sample.mean("sample").transpose(*time_dims).assign_attrs(
            units="1", long_name="mean nudged - free rate difference"),
        "abs_difference": abs(per_sample).mean("sample").transpose(*time_dims).assign_attrs(
            units="1", long_name="mean |nudged - free| rate difference"),
        "final_difference": _last_valid(per_sample).transpose(
            "epoch", "sample", "column").assign_attrs(
            units="1", long_name="nudged - free rate difference at the end of the nudged phase"),
    })


def target_alignment(traces: xr.Dataset, layer: str) -> xr.Dataset:
    """Does the nudge push each column toward its preferred digit's target?

    A column whose preferred digit is the target should be pushed up in the
    nudged phase (difference > 0) and pushed down otherwise (difference < 0).
    The preferred digit is taken from the free-phase tuning of the same
    epoch.  A difference of exactly 0 does not count as the right sign.

    Parameters
    ----------
    traces : xr.Dataset
        Recorded traces.
    layer : str
        Population name.

    Returns
    -------
    xr.Dataset
        Over (``epoch``, ``column``): ``preferred_digit``;
        ``difference_preferred`` and ``difference_other``, the mean final
        nudged − free difference (dimensionless) over samples whose label is,
        or is not, the preferred digit (NaN without such samples);
        ``aligned_fraction``, the fraction of all samples whose difference has
        the right sign.  Silent columns (preferred digit -1) get NaN.

    Notes
    -----
    With ten digits, nine in ten samples are "other" ones, so
    ``aligned_fraction`` mostly says whether the nudge lowers a column on
    other digits' samples; small positive differences there (a column that
    shares units' input with the target's) pull it down even while the
    difference becomes specific to the preferred digit.  Compare
    ``difference_preferred`` with ``difference_other`` for specificity.
    """
    preferred = preferred_digit(tuning(traces, layer))
    difference = phase_difference(traces, layer)["final_difference"]
    is_preferred = _labels(traces) == preferred
    right_sign = xr.where(is_preferred, difference > 0, difference < 0)
    tuned = preferred >= 0
    dims = ("epoch", "column")
    return xr.Dataset({
        "preferred_digit": preferred,
        "difference_preferred": difference.where(is_preferred).mean("sample").where(tuned)
        .transpose(*dims).assign_attrs(
            units="1", long_name="mean final difference, samples of the preferred digit"),
        "difference_other": difference.where(~is_preferred).mean("sample").where(tuned)
        .transpose(*dims).assign_attrs(
            units="1", long_name="mean final difference, samples of other digits"),
        "aligned_fraction": right_sign.mean("sample").where(tuned).transpose(*dims)
        .assign_attrs(units="1", long_name="fraction of samples with a difference of the "
                      "right sign (+ preferred digit, - other digits)"),
    })
