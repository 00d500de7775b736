"""Column-level analyses of recorded traces and weight histories (DESIGN.md question 4).

Every function takes xarray objects in DESIGN.md's vocabulary and returns
xarray objects whose dimensions are drawn from ``epoch``, ``sample``,
``phase``, ``time`` (ms), ``column``, ``column_other`` and ``digit``.

Inputs
------
traces : xr.Dataset
    ``rate`` (and ``s``) with dims (``epoch``, ``sample``, ``phase``,
    ``time``, ``unit``), entries past a phase's end NaN; ``label`` over
    ``sample``; coordinates ``layer``, ``column``, ``index`` on ``unit``.
    Phases ``free`` and ``nudged`` (nudged toward the target, β > 0) are
    required.  A single recording without an ``epoch`` dimension is given as
    ``traces.expand_dims(epoch=[e])``.
weight_history : xr.Dataset
    ``W_<pre>_<post>`` (``<pre>_unit``, ``<post>_unit``), ``b_<pop>``
    (``<pop>_unit``) and optional lateral blocks ``L_<pop>``
    (``<pop>_column``, ``<pop>_pre``, ``<pop>_post``), all over ``epoch``;
    coordinate ``<pop>_column`` on each ``<pop>_unit``.

A population laid out without columns is analysed as a single column 0.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

REQUIRED_PHASES = ("free", "nudged")


# ---------------------------------------------------------------- validation


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


# ---------------------------------------------------------------- final states


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


# ---------------------------------------------------------------- EP's learning signal


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


# ---------------------------------------------------------------- digit tuning


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


# ---------------------------------------------------------------- alignment with the target


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


# ---------------------------------------------------------------- weights


def _unit_columns(weight_history: xr.Dataset, layer: str) -> np.ndarray:
    """Column of each unit of ``layer``: the ``<layer>_column`` coordinate, else 0."""
    unit_dim, coord = f"{layer}_unit", f"{layer}_column"
    if coord in weight_history.coords and weight_history[coord].dims == (unit_dim,):
        return weight_history[coord].values.astype(np.int64)
    return np.zeros(weight_history.sizes[unit_dim], np.int64)


def _attached_variables(weight_history: xr.Dataset, layer: str, include_biases: bool):
    """Names of the weights touching ``layer``'s units (and its bias, if asked)."""
    unit_dim = f"{layer}_unit"
    if unit_dim not in weight_history.dims:
        raise ValueError(f"population {layer!r} is not in the weight history (no dimension "
                         f"{unit_dim!r})")
    return [name for name, var in weight_history.data_vars.items()
            if (name.startswith("W_") and unit_dim in var.dims) or name == f"L_{layer}"
            or (include_biases and name == f"b_{layer}")]


def _squares_by_column(weights: xr.Dataset, layer: str, columns: np.ndarray) -> xr.DataArray:
    """Sum of squared entries of ``weights`` attached to each column: (``epoch``, ``column``).

    A projection's rows (or columns) belong to the column of their unit of
    ``layer``; a lateral block ``L_<layer>[c]`` belongs to column c.
    """
    unit_dim, column_dim = f"{layer}_unit", f"{layer}_column"
    ids = np.unique(columns)
    membership = xr.DataArray((columns[:, None] == ids).astype(float), dims=(unit_dim, "column"),
                              coords={"column": ids})
    total = xr.zeros_like(membership.isel({unit_dim: 0}, drop=True))
    for name, var in weights.data_vars.items():
        squares = (var ** 2).drop_vars(list(var.coords), errors="ignore")
        if name == f"L_{layer}":
            if var.sizes[column_dim] != len(ids):
                raise ValueError(f"{name} has {var.sizes[column_dim]} column blocks but "
                                 f"{layer!r} has {len(ids)} columns")
            per_column = squares.sum([d for d in var.dims if d not in ("epoch", column_dim)],
                                     skipna=False)
            total = total + per_column.rename({column_dim: "column"}).assign_coords(column=ids)
        else:
            per_unit = squares.sum([d for d in var.dims if d not in ("epoch", unit_dim)],
                                   skipna=False)
            total = total + xr.dot(per_unit, membership, dim=unit_dim)
    return total.transpose("epoch", "column")


def weight_change(weight_history: xr.Dataset, layer: str,
                  include_biases: bool = False) -> xr.Dataset:
    """How much the weights of each column changed since the previous recorded epoch.

    The weights attached to a column are the rows and columns of every
    projection ``W`` that touch its units (incoming and outgoing) and its
    lateral block ``L_<layer>[c]`` if present (every entry, so each lateral
    synapse of the symmetric block counts twice); with ``include_biases``
    also the units' biases.

    Parameters
    ----------
    weight_history : xr.Dataset
        Weights at each recorded epoch (see the module docstring).
    layer : str
        Population name; one without a ``<layer>_column`` coordinate is a
        single column 0.
    include_biases : bool
        Count the biases ``b_<layer>`` of the column's units too.

    Returns
    -------
    xr.Dataset
        Over (``epoch``, ``column``): ``weight_change``, the Frobenius norm
        of the change since the previous recorded epoch (dimensionless; NaN
        at the first recorded epoch); ``relative_weight_change``, that norm
        divided by the Frobenius norm of the same weights at the previous
        recorded epoch (NaN where those are all 0).
    """
    if "epoch" not in weight_history.dims:
        raise ValueError("the weight history has no 'epoch' dimension; give a single set of "
                         "weights as weights.expand_dims(epoch=[e])")
    weights = weight_history[_attached_variables(weight_history, layer, include_biases)]
    columns = _unit_columns(weight_history, layer)
    before = weights.shift(epoch=1)
    change = np.sqrt(_squares_by_column(weights - before, layer, columns))
    size = np.sqrt(_squares_by_column(before, layer, columns))
    return xr.Dataset({
        "weight_change": change.assign_attrs(
            units="1", long_name="Frobenius norm of the change since the previous epoch"),
        "relative_weight_change": (change / size.where(size > 0)).assign_attrs(
            units="1", long_name="weight change / norm of the weights before it"),
    })


# ---------------------------------------------------------------- correlations


def _pearson(a: xr.DataArray, b: xr.DataArray, dim: str) -> xr.DataArray:
    """Pearson correlation along ``dim``; NaN if either is constant or has a NaN."""
    a_centred = a - a.mean(dim, skipna=False)
    b_centred = b - b.mean(dim, skipna=False)
    covariance = (a_centred * b_centred).sum(dim, skipna=False)
    scale = np.sqrt((a_centred ** 2).sum(dim, skipna=False)
                    * (b_centred ** 2).sum(dim, skipna=False))
    return covariance / scale.where(scale > 0)


def difference_weight_correlation(difference: xr.DataArray,
                                  change: xr.DataArray) -> xr.DataArray:
    """Correlation across columns of the learning signal and the learning it drove.

    Alignment: the value at recorded epoch e_i pairs the signal recorded at
    the previous recorded epoch e_{i-1} (the weights then produced it, and
    it drove the updates that followed) with the weight change between
    e_{i-1} and e_i (as :func:`weight_change` reports it at e_i).  The first
    recorded epoch has no predecessor: NaN.

    Parameters
    ----------
    difference : xr.DataArray
        Dims (``epoch``, ``column``): e.g. the mean |nudged − free| final
        difference, ``abs(phase_difference(...)["final_difference"]).mean("sample")``.
    change : xr.DataArray
        Dims (``epoch``, ``column``), e.g. ``weight_change(...)["weight_change"]``,
        on the same epochs and columns.

    Returns
    -------
    xr.DataArray
        Dim ``epoch``: Pearson correlation across columns, in [-1, 1]; NaN
        where either vector is constant or has a NaN.
    """
    for name, da in (("difference", difference), ("change", change)):
        if set(da.dims) != {"epoch", "column"}:
            raise ValueError(f"{name} must have dims (epoch, column); got {da.dims}")
    try:
        xr.align(difference, change, join="exact")
    except ValueError as err:
        raise ValueError("difference and change must share the same epochs and columns "
                         f"({err})") from None
    correlation = _pearson(difference.shift(epoch=1), change, "column")
    return correlation.rename("difference_weight_correlation").assign_attrs(
        units="1", long_name="correlation across columns of the previous epoch's "
        "|nudged - free| difference and the weight change since")


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


# ---------------------------------------------------------------- everything at once


def column_metrics(traces: xr.Dataset, weight_history: xr.Dataset, layer: str,
                   bins: int = 4, include_biases: bool = False) -> xr.Dataset:
    """All column analyses of ``layer`` in one netCDF-safe Dataset.

    Parameters
    ----------
    traces : xr.Dataset
        Recorded traces.
    weight_history : xr.Dataset
        Weights at (at least) the recorded epochs; only the traces' epochs
        are used, so weight changes are since the previous *recorded* epoch.
    layer : str
        Population name.
    bins : int
        Rate bins for :func:`mutual_information`.
    include_biases : bool
        Passed to :func:`weight_change`.

    Returns
    -------
    xr.Dataset
        ``activity`` (epoch, phase, column); ``difference``,
        ``abs_difference`` (epoch, column, time[ms]); ``final_difference``
        (epoch, sample, column); ``abs_final_difference`` (epoch, column),
        its mean magnitude over samples; ``tuning`` (epoch, column, digit);
        ``selectivity``, ``mutual_information`` [bit], ``preferred_digit``,
        ``difference_preferred``, ``difference_other``, ``aligned_fraction``,
        ``weight_change``, ``relative_weight_change`` (epoch, column);
        ``difference_weight_correlation`` (epoch); ``similarity`` (epoch,
        column, column_other); ``mean_similarity`` (epoch).
    """
    _check_traces(traces, layer)
    epochs = traces.epoch.values
    missing = np.setdiff1d(epochs, weight_history.epoch.values) \
        if "epoch" in weight_history.dims else epochs
    if len(missing):
        raise ValueError(f"the weight history lacks recorded epoch(s) {missing.tolist()}")
    changes = weight_change(weight_history.sel(epoch=epochs), layer, include_biases)
    differences = phase_difference(traces, layer)
    abs_final = abs(differences["final_difference"]).mean("sample").assign_attrs(
        units="1", long_name="mean |nudged - free| final difference")
    tuning_matrix = tuning(traces, layer)
    metrics = xr.merge([
        column_activity(traces, layer),
        differences,
        abs_final.rename("abs_final_difference"),
        tuning_matrix,
        selectivity_index(tuning_matrix),
        mutual_information(traces, layer, bins),
        target_alignment(traces, layer),
        changes,
        difference_weight_correlation(abs_final, changes["weight_change"]),
        representational_similarity(traces, layer),
    ], join="exact", combine_attrs="override")  # keeps every variable's own units
    metrics.attrs = {"layer": layer, "mutual_information_bins": int(bins),
                     "include_biases": int(include_biases),  # netCDF has no bool attrs
                     "units": "rates dimensionless; time in ms; information in bit"}
    # lazily opened recordings (cortex_ep.results.open_run) are reduced here: the
    # metrics are small, so hand them back in memory
    return metrics.load()
