"""What columns learn: weight change per column and its relation to the learning signal."""

from __future__ import annotations

import numpy as np
import xarray as xr

from ._common import _pearson


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
