"""Column-level analyses of recorded traces and weight histories (how columns change as the network learns).

Every function takes xarray objects in the recordings' vocabulary (:mod:`cortex_ep.recordings.traces`) and returns
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

Modules: :mod:`.activity` (activity, the nudged − free difference, its
alignment with the target), :mod:`.tuning` (tuning, selectivity, mutual
information, similarity between columns), :mod:`.plasticity` (weight change
per column and its correlation with the difference); :func:`column_metrics`
gathers them.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from ._common import _check_traces, final_rates
from .activity import column_activity, phase_difference, target_alignment
from .plasticity import difference_weight_correlation, weight_change
from .tuning import (
    mutual_information,
    preferred_digit,
    representational_similarity,
    selectivity_index,
    tuning,
)

__all__ = ["final_rates", "column_activity", "phase_difference", "target_alignment",
           "tuning", "preferred_digit", "selectivity_index", "mutual_information",
           "representational_similarity", "weight_change", "difference_weight_correlation",
           "column_metrics"]


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
    # lazily opened recordings (cortex_ep.recordings.run.open_run) are reduced here: the
    # metrics are small, so hand them back in memory
    return metrics.load()
