"""Column analyses on tiny synthetic recordings whose answers are known by hand."""

import numpy as np
import pytest
import xarray as xr

from cortex_ep import io
from cortex_ep.recordings import columns

LABELS = np.array([0, 1, 2, 0, 1, 2])          # balanced: 3 digits, 2 samples each
N_COLUMNS, PER_COLUMN = 3, 2
TIMES = np.array([0.0, 5.0, 10.0])              # ms; the nudged phase ends at 5 ms
Y_FREE, Y_NUDGED = 0.9, 0.3                     # a second layer that must never leak in


def tuned_rates():
    """Epoch 0: layer h silent.  Epoch 1: column c at 0.6 for digit c, 0.2 otherwise."""
    free = np.zeros((2, len(LABELS), N_COLUMNS))
    free[1] = np.where(LABELS[:, None] == np.arange(N_COLUMNS), 0.6, 0.2)
    return free


def nudges():
    """Final nudged − free: +0.2 on the label's column, −0.1 elsewhere, one wrong sign."""
    delta = np.full((2, len(LABELS), N_COLUMNS), 0.1)
    delta[1] = np.where(LABELS[:, None] == np.arange(N_COLUMNS), 0.2, -0.1)
    delta[1, 0, 1] = 0.1                        # sample 0 (digit 0) pushes column 1 up
    return delta


def make_traces(free, delta, labels=LABELS, phases=("free", "nudged"), epochs=(0, 1)):
    """Traces with column-mean final rates ``free`` and final differences ``delta``.

    ``free``, ``delta``: (epoch, sample, column).  The two units of a column
    sit ±0.05 around the column mean (where it is above 0), so only a correct
    average over units gives the column values back.  Free phase: 0, half,
    full rate at 0, 5, 10 ms.  Nudged phases: the free fixed point at 0 ms,
    free ± delta at 5 ms, then NaN.
    """
    n_epochs, n_samples, _ = free.shape
    spread = np.tile([0.05, -0.05], N_COLUMNS)
    h_free = np.repeat(free, PER_COLUMN, axis=-1)
    h_free = h_free + spread * (h_free > 0)
    h_delta = np.repeat(delta, PER_COLUMN, axis=-1)
    n_h = N_COLUMNS * PER_COLUMN
    rate = np.full((n_epochs, n_samples, len(phases), len(TIMES), n_h + 2), np.nan)
    for p, phase in enumerate(phases):
        if phase == "free":
            rate[:, :, p, :, :n_h] = h_free[:, :, None] * np.array([0.0, 0.5, 1.0])[:, None]
            rate[:, :, p, :, n_h:] = Y_FREE
        else:
            sign = -1.0 if phase == "nudged_neg" else 1.0
            rate[:, :, p, 0, :n_h] = h_free
            rate[:, :, p, 1, :n_h] = h_free + sign * h_delta
            rate[:, :, p, 0, n_h:] = Y_FREE
            rate[:, :, p, 1, n_h:] = Y_NUDGED
    dims = ("epoch", "sample", "phase", "time", "unit")
    return xr.Dataset(
        {"s": (dims, rate), "rate": (dims, rate, {"units": "1"}),
         "label": ("sample", np.asarray(labels)),
         "image": (("sample", "pixel"), np.zeros((n_samples, 4)))},
        coords={"epoch": list(epochs), "sample": np.arange(10, 10 + n_samples),
                "phase": list(phases), "time": ("time", TIMES, {"units": "ms"}),
                "layer": ("unit", ["h"] * n_h + ["y", "y"]),
                "column": ("unit", np.r_[np.repeat(np.arange(N_COLUMNS), PER_COLUMN), 0, 0]),
                "index": ("unit", np.r_[np.arange(n_h), 0, 1])},
        attrs={"dt_ms": 5.0, "tau_ms": 10.0, "beta": 0.5, "estimator": "one-sided"})


@pytest.fixture
def traces():
    return make_traces(tuned_rates(), nudges())


# ------------------------------------------------------------------ weights

SQRT_038 = np.sqrt(4 * 0.1 ** 2 + 4 * 0.2 ** 2 + 2 * 0.3 ** 2)   # column 1's change at epoch 1


def make_weight_history(epochs=(0, 1, 2)):
    """x(2) -> h(3 columns × 2) -> y(2).  Epoch 1 changes only column 1's weights;
    epoch 2 changes only a bias of column 0 and the weights not touching h."""
    rng = np.random.default_rng(0)
    lateral = rng.normal(size=(N_COLUMNS, PER_COLUMN, PER_COLUMN))
    lateral = lateral + lateral.transpose(0, 2, 1)
    lateral[:, [0, 1], [0, 1]] = 0.0
    base = {"W_x_h": rng.normal(size=(2, 6)), "W_h_y": rng.normal(size=(6, 2)),
            "b_h": rng.normal(size=6), "b_y": rng.normal(size=2), "L_h": lateral}
    history = {name: np.stack([value] * 3) for name, value in base.items()}
    history["W_x_h"][1:, :, 2:4] += 0.1
    history["W_h_y"][1:, 2:4, :] += 0.2
    history["L_h"][1:, 1] += [[0.0, 0.3], [0.3, 0.0]]
    history["b_h"][2, 0] += 0.5
    history["b_y"][2] += 1.0
    dims = {"W_x_h": ("x_unit", "h_unit"), "W_h_y": ("h_unit", "y_unit"), "b_h": ("h_unit",),
            "b_y": ("y_unit",), "L_h": ("h_column", "h_pre", "h_post")}
    return xr.Dataset(
        {name: (("epoch",) + dims[name], values[list(epochs)])
         for name, values in history.items()},
        coords={"epoch": list(epochs), "h_column": ("h_unit", [0, 0, 1, 1, 2, 2])},
        attrs={"projections": "x->h h->y"})


# ------------------------------------------------------------------ final states


def test_final_rates_take_the_last_valid_time_of_each_phase(traces):
    final = columns.final_rates(traces)
    assert final.dims == ("epoch", "sample", "phase", "unit")
    rate = traces.rate.values
    np.testing.assert_allclose(final.sel(phase="free").values, rate[:, :, 0, 2])
    np.testing.assert_allclose(final.sel(phase="nudged").values, rate[:, :, 1, 1])
    assert not final.isnull().any()
    assert list(columns.final_rates(traces, "y").layer.values) == ["y", "y"]


def test_column_activity_averages_samples_and_units(traces):
    activity = columns.column_activity(traces, "h")
    assert activity.dims == ("epoch", "phase", "column")
    assert activity.attrs["units"] == "1"
    free, delta = tuned_rates(), nudges()
    np.testing.assert_allclose(activity.sel(phase="free").values, free.mean(axis=1))
    np.testing.assert_allclose(activity.sel(phase="nudged").values,
                               (free + delta).mean(axis=1))
    np.testing.assert_allclose(activity.sel(epoch=1, phase="free"), [1 / 3] * 3)


def test_layer_without_columns_is_one_column(traces):
    activity = columns.column_activity(traces, "y")
    assert activity.column.values.tolist() == [0]
    np.testing.assert_allclose(activity.sel(phase="free"), Y_FREE)
    np.testing.assert_allclose(activity.sel(phase="nudged"), Y_NUDGED)


def test_symmetric_phases_are_kept_and_the_difference_uses_nudged(traces):
    symmetric = make_traces(tuned_rates(), nudges(), phases=("free", "nudged", "nudged_neg"))
    activity = columns.column_activity(symmetric, "h")
    np.testing.assert_allclose(activity.sel(phase="nudged_neg").values,
                               (tuned_rates() - nudges()).mean(axis=1))
    xr.testing.assert_allclose(columns.phase_difference(symmetric, "h"),
                               columns.phase_difference(traces, "h"))


# ------------------------------------------------------------------ phase difference


def test_phase_difference_time_course_and_final_value(traces):
    result = columns.phase_difference(traces, "h")
    delta = nudges()
    assert result.difference.dims == ("epoch", "column", "time")
    assert result.time.values.tolist() == [0.0, 5.0]       # the nudged phase only
    assert result.time.attrs["units"] == "ms"
    np.testing.assert_allclose(result.difference.sel(time=0.0), 0.0, atol=1e-12)
    np.testing.assert_allclose(result.difference.sel(time=5.0).values, delta.mean(axis=1),
                               atol=1e-12)
    np.testing.assert_allclose(result.abs_difference.sel(time=5.0).values,
                               np.abs(delta).mean(axis=1))
    assert result.final_difference.dims == ("epoch", "sample", "column")
    np.testing.assert_allclose(result.final_difference.values, delta, atol=1e-12)


# ------------------------------------------------------------------ tuning


def test_tuning_is_identity_like_and_preferred_digit(traces):
    matrix = columns.tuning(traces, "h")
    assert matrix.dims == ("epoch", "column", "digit")
    assert matrix.digit.values.tolist() == [0, 1, 2]
    np.testing.assert_allclose(matrix.sel(epoch=1).values, 0.2 + 0.4 * np.eye(3))
    np.testing.assert_allclose(matrix.sel(epoch=0).values, 0.0)
    preferred = columns.preferred_digit(matrix)
    assert preferred.dims == ("epoch", "column")
    assert preferred.sel(epoch=1).values.tolist() == [0, 1, 2]
    assert preferred.sel(epoch=0).values.tolist() == [-1, -1, -1]   # silent


def test_preferred_digit_ties_go_to_the_lowest_digit():
    flat = xr.DataArray([[0.3, 0.5, 0.5]], dims=("column", "digit"),
                        coords={"digit": [4, 7, 9]})
    assert columns.preferred_digit(flat).values.tolist() == [7]


def test_selectivity_index(traces):
    index = columns.selectivity_index(columns.tuning(traces, "h"))
    assert index.dims == ("epoch", "column")
    np.testing.assert_allclose(index.sel(epoch=1), (0.6 - 0.2) / (0.6 + 0.2))
    np.testing.assert_allclose(index.sel(epoch=0), 0.0)              # silent -> 0
    one_hot = xr.DataArray(np.eye(3), dims=("column", "digit"), coords={"digit": [0, 1, 2]})
    np.testing.assert_allclose(columns.selectivity_index(one_hot), 1.0)
    with pytest.raises(ValueError, match="at least two digits"):
        columns.selectivity_index(one_hot.isel(digit=[0]))


def binary_entropy(p):
    return -(p * np.log2(p) + (1 - p) * np.log2(1 - p))


def test_mutual_information_of_an_indicator_column(traces):
    mi = columns.mutual_information(traces, "h", bins=4)
    assert mi.dims == ("epoch", "column")
    assert mi.attrs["units"] == "bit"
    # each column tells "my digit or not": H(1/3); a silent column tells nothing
    np.testing.assert_allclose(mi.sel(epoch=1), binary_entropy(1 / 3))
    np.testing.assert_allclose(mi.sel(epoch=0), 0.0, atol=1e-12)


def test_mutual_information_of_a_graded_column_is_the_label_entropy():
    graded = np.broadcast_to((LABELS / 2)[None, :, None], (2, 6, 3)).copy()  # 0, 0.5, 1
    traces = make_traces(graded, np.zeros_like(graded))
    # 4 equal-width bins on [0, 1]: 0, 0.5 and 1.0 fall in different bins
    np.testing.assert_allclose(columns.mutual_information(traces, "h", bins=4), np.log2(3))
    np.testing.assert_allclose(columns.mutual_information(traces, "h", bins=1), 0.0)
    with pytest.raises(ValueError, match="bins must be a positive integer"):
        columns.mutual_information(traces, "h", bins=0)


# ------------------------------------------------------------------ alignment


def test_target_alignment(traces):
    result = columns.target_alignment(traces, "h")
    for name in ("difference_preferred", "difference_other", "aligned_fraction"):
        assert result[name].dims == ("epoch", "column")
        assert result[name].sel(epoch=0).isnull().all()          # silent: no preference
    tuned = result.sel(epoch=1)
    np.testing.assert_allclose(tuned.difference_preferred, 0.2)
    # column 1's other samples: +0.1 (wrong sign) and three -0.1
    np.testing.assert_allclose(tuned.difference_other, [-0.1, -0.05, -0.1])
    np.testing.assert_allclose(tuned.aligned_fraction, [1.0, 5 / 6, 1.0])


# ------------------------------------------------------------------ weights


def test_weight_change_only_where_weights_moved():
    history = make_weight_history()
    result = columns.weight_change(history, "h")
    change = result.weight_change
    assert change.dims == ("epoch", "column")
    assert change.sel(epoch=0).isnull().all()
    np.testing.assert_allclose(change.sel(epoch=1), [0.0, SQRT_038, 0.0], atol=1e-12)
    np.testing.assert_allclose(change.sel(epoch=2), 0.0, atol=1e-12)  # biases, other layers
    with_biases = columns.weight_change(history, "h", include_biases=True).weight_change
    np.testing.assert_allclose(with_biases.sel(epoch=2), [0.5, 0.0, 0.0], atol=1e-12)


def test_relative_weight_change():
    history = make_weight_history()
    before = history.sel(epoch=0)
    column_1_size = np.sqrt((before.W_x_h.values[:, 2:4] ** 2).sum()
                            + (before.W_h_y.values[2:4] ** 2).sum()
                            + (before.L_h.values[1] ** 2).sum())
    relative = columns.weight_change(history, "h").relative_weight_change
    np.testing.assert_allclose(relative.sel(epoch=1, column=1), SQRT_038 / column_1_size)


def test_weight_change_of_a_layer_without_columns():
    change = columns.weight_change(make_weight_history(), "y").weight_change
    assert change.column.values.tolist() == [0]
    np.testing.assert_allclose(change.sel(epoch=1), [np.sqrt(4 * 0.2 ** 2)])


def test_weight_change_errors():
    history = make_weight_history()
    with pytest.raises(ValueError, match="'z' is not in the weight history"):
        columns.weight_change(history, "z")
    with pytest.raises(ValueError, match="no 'epoch' dimension"):
        columns.weight_change(history.isel(epoch=0), "h")


# ------------------------------------------------------------------ correlations


def test_difference_weight_correlation_pairs_previous_signal_with_next_change():
    rng = np.random.default_rng(1)
    coords = {"epoch": [0, 2, 5, 9], "column": np.arange(5)}
    difference = xr.DataArray(rng.uniform(size=(4, 5)), dims=("epoch", "column"), coords=coords)
    change = (2.0 * difference + 1.0).shift(epoch=1).fillna(0.0)  # change[e_i] ∝ diff[e_{i-1}]
    correlation = columns.difference_weight_correlation(difference, change)
    assert correlation.dims == ("epoch",)
    assert np.isnan(correlation.sel(epoch=0))
    np.testing.assert_allclose(correlation.sel(epoch=[2, 5, 9]), 1.0)
    np.testing.assert_allclose(columns.difference_weight_correlation(difference, -change)
                               .sel(epoch=[2, 5, 9]), -1.0)
    with pytest.raises(ValueError, match="same epochs and columns"):
        columns.difference_weight_correlation(difference, change.isel(epoch=[0, 1]))
    with pytest.raises(ValueError, match=r"dims \(epoch, column\)"):
        columns.difference_weight_correlation(difference.isel(epoch=0), change)


def test_representational_similarity(traces):
    result = columns.representational_similarity(traces, "h")
    similarity = result.similarity
    assert similarity.dims == ("epoch", "column", "column_other")
    # indicators of 3 balanced classes correlate at -1/(3 - 1)
    np.testing.assert_allclose(similarity.sel(epoch=1), 1.5 * np.eye(3) - 0.5)
    assert similarity.sel(epoch=0).isnull().all()               # constant responses
    assert result.mean_similarity.dims == ("epoch",)
    np.testing.assert_allclose(result.mean_similarity, [np.nan, -0.5])


# ------------------------------------------------------------------ everything at once


def test_column_metrics_collects_everything_and_round_trips(traces, tmp_path):
    metrics = columns.column_metrics(traces, make_weight_history(), "h")
    expected_dims = {
        "activity": ("epoch", "phase", "column"),
        "difference": ("epoch", "column", "time"),
        "abs_difference": ("epoch", "column", "time"),
        "final_difference": ("epoch", "sample", "column"),
        "tuning": ("epoch", "column", "digit"),
        "similarity": ("epoch", "column", "column_other"),
        "difference_weight_correlation": ("epoch",),
        "mean_similarity": ("epoch",),
        **{name: ("epoch", "column") for name in (
            "abs_final_difference", "selectivity", "mutual_information", "preferred_digit",
            "difference_preferred", "difference_other", "aligned_fraction", "weight_change",
            "relative_weight_change")},
    }
    assert {name: metrics[name].dims for name in metrics.data_vars} == expected_dims
    xr.testing.assert_identical(metrics.selectivity,
                                columns.selectivity_index(columns.tuning(traces, "h")))
    np.testing.assert_allclose(metrics.weight_change.sel(epoch=1), [0.0, SQRT_038, 0.0],
                               atol=1e-12)
    np.testing.assert_allclose(metrics.abs_final_difference.values,
                               np.abs(nudges()).mean(axis=1))
    path = tmp_path / "metrics.nc"
    metrics.to_netcdf(path, engine=io.NETCDF_ENGINE)
    with xr.open_dataset(path, engine=io.NETCDF_ENGINE) as reread:
        xr.testing.assert_identical(reread.load(), metrics)


def test_column_metrics_uses_only_the_recorded_epochs(traces):
    history = make_weight_history()
    metrics = columns.column_metrics(traces.assign_coords(epoch=[0, 2]), history, "h")
    # epochs 0 and 2 recorded: the change since epoch 0 includes epoch 1's
    np.testing.assert_allclose(metrics.weight_change.sel(epoch=2), [0.0, SQRT_038, 0.0],
                               atol=1e-12)
    with pytest.raises(ValueError, match=r"lacks recorded epoch\(s\) \[7\]"):
        columns.column_metrics(traces.assign_coords(epoch=[0, 7]), history, "h")


# ------------------------------------------------------------------ input errors


def test_a_single_recording_needs_an_epoch_dimension(traces):
    single = traces.isel(epoch=1)
    with pytest.raises(ValueError, match=r"traces.expand_dims\(epoch=\[e\]\)"):
        columns.column_activity(single, "h")
    # expand_dims also gives ``label`` an epoch dimension; that is accepted
    xr.testing.assert_allclose(columns.tuning(single.expand_dims(epoch=[1]), "h"),
                               columns.tuning(traces, "h").sel(epoch=[1]))


def test_unknown_layer_and_missing_phase(traces):
    with pytest.raises(ValueError, match="layer 'z' is not in the traces; recorded layers: "
                                         "h, y"):
        columns.tuning(traces, "z")
    with pytest.raises(ValueError, match="lack phase.* nudged"):
        columns.phase_difference(traces.sel(phase=["free"]), "h")


def test_labels_must_agree_across_epochs(traces):
    shuffled = traces.copy()
    shuffled["label"] = xr.DataArray(np.stack([LABELS, LABELS[::-1]]), dims=("epoch", "sample"))
    with pytest.raises(ValueError, match="labels differ between epochs"):
        columns.tuning(shuffled, "h")
