"""Figures of a training run directory: what ``cortex-ep plot RUN`` draws.

Each function takes a :class:`cortex_ep.recordings.run.Run` (from
:func:`cortex_ep.recordings.run.open_run`) and returns a matplotlib Figure;
:func:`write_run_figures` saves them all as PNGs.

- :func:`learning_curves` — accuracy and loss per epoch, training and held-out;
- :func:`phase_trajectories` — with recorded traces: the free and nudged
  trajectories of each population, in ms, for a few probe digits;
- :func:`receptive_fields` — the first hidden population's incoming weights as
  images (28 × 28 for MNIST), one row per column where it has columns.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from .. import io

#: colours of the phases in the trajectory figure
PHASE_STYLE = {"free": ("tab:blue", "-"), "nudged": ("tab:red", "--"),
               "nudged_neg": ("tab:green", ":")}
#: at most this many hidden units drawn per population in the trajectory figure
TRAJECTORY_UNITS = 6
#: at most this many receptive fields drawn
MAX_FIELDS = 500


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def learning_curves(run):
    """Accuracy and loss per epoch, on the training and the held-out digits.

    The training values are those of the free phases seen while learning
    (``train_*`` in ``history.nc``).
    """
    plt = _pyplot()
    from matplotlib.ticker import MaxNLocator

    history = run.history
    epochs = history.epoch.values
    fig, (acc, loss) = plt.subplots(1, 2, figsize=(9, 3.4), constrained_layout=True)
    held_out = "held-out" if "validation" not in str(run.attrs.get("data", "")) else "validation"
    for ax, name, scale in ((acc, "accuracy", 100.0), (loss, "loss", 1.0)):
        for split, label, style in (("train", "train", "o-"), ("test", held_out, "s-")):
            ax.plot(epochs, scale * history[f"{split}_{name}"].values, style, label=label,
                    markersize=4)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    acc.xaxis.set_major_locator(MaxNLocator(integer=True))
    loss.xaxis.set_major_locator(MaxNLocator(integer=True))
    acc.set_ylabel("accuracy (%)")
    loss.set_ylabel("cost C = ½‖s_out − d‖² (mean)")
    acc.legend()
    best = int(np.nanargmax(history.test_accuracy.values))
    acc.set_title(f"best {held_out} {100 * float(history.test_accuracy[best]):.1f}% "
                  f"(epoch {int(epochs[best])})", fontsize=10)
    loss.set_title(_run_label(run), fontsize=10)
    return fig


def _run_label(run) -> str:
    attrs = run.attrs
    engine = attrs.get("engine", "?")
    if engine in ("rbp", "backprop"):
        return f"{attrs.get('network', '')} | {engine}"
    return (f"{attrs.get('network', '')} | EP {attrs.get('estimator', '')} "
            f"β={float(attrs.get('beta', float('nan'))):g} | {engine}")


def probe_samples(traces, n: int = 3) -> list[int]:
    """Positions of up to ``n`` probe digits with distinct labels (first of each)."""
    labels = np.asarray(traces.label.values)
    chosen, seen = [], set()
    for i, label in enumerate(labels):
        if int(label) not in seen:
            chosen.append(i)
            seen.add(int(label))
        if len(chosen) == n:
            break
    return chosen


def phase_trajectories(run, epoch: int | None = None, n_digits: int = 3):
    """Free and nudged trajectories of each population, for a few probe digits.

    One row per population, one column per probe digit.  Time is in ms: the
    free phase from 0, each nudged phase from the end of the free phase.
    Hidden populations show the units that change most between the phases
    (at most :data:`TRAJECTORY_UNITS`); the output shows every unit, the
    target's in black.

    Parameters
    ----------
    epoch : int, optional
        Recorded epoch to draw (default: the last recorded).
    """
    plt = _pyplot()
    if run.traces is None:
        raise ValueError(f"{run.path} has no recorded traces (train with --record N)")
    traces = run.traces
    epoch = int(traces.epoch.values[-1]) if epoch is None else int(epoch)
    traces = traces.sel(epoch=epoch)
    rate = traces.rate.load()
    layers = list(dict.fromkeys(str(v) for v in traces.layer.values))
    output = layers[-1]
    samples = probe_samples(traces, n_digits)
    times = traces.time.values
    free_end = _phase_end(times, rate.sel(phase="free"))
    fig, axes = plt.subplots(len(layers), len(samples), squeeze=False, sharex=True,
                             figsize=(3.2 * len(samples), 2.2 * len(layers)),
                             constrained_layout=True)
    for col, i in enumerate(samples):
        label = int(traces.label.values[i])
        for row, layer in enumerate(layers):
            ax = axes[row, col]
            r = rate.isel(sample=i).where(rate.layer == layer, drop=True)
            units = _units_to_draw(r, layer == output)
            for phase in r.phase.values:
                colour, style = PHASE_STYLE.get(str(phase), ("grey", "-."))
                offset = 0.0 if phase == "free" else free_end
                values = r.sel(phase=phase).values[:, units]
                for k, u in enumerate(units):
                    is_target = layer == output and int(r.index.values[u]) == label
                    ax.plot(times + offset, values[:, k], style,
                            color="black" if is_target else colour,
                            lw=1.6 if is_target else 0.9,
                            label=str(phase) if k == 0 else None)
            ax.axvline(free_end, color="grey", lw=0.6)
            ax.set_ylim(-0.05, 1.05)
            if col == 0:
                ax.set_ylabel(f"{layer}: rate ρ(s)")
            if row == 0:
                ax.set_title(f"probe digit {label}", fontsize=10)
            if row == len(layers) - 1:
                ax.set_xlabel("time (ms)")
    axes[0, 0].legend(fontsize=8, loc="best")
    fig.suptitle(f"free and nudged phases after epoch {epoch} (0 = before learning); "
                 f"output: target unit in black", fontsize=10)
    return fig


def _phase_end(times, free) -> float:
    """Time (ms) of the last recorded step of the free phase (later entries are NaN)."""
    valid = ~np.isnan(free.isel(sample=0, unit=0).values)
    return float(times[np.flatnonzero(valid)[-1]])


def _units_to_draw(rate, every_unit: bool) -> list[int]:
    n = rate.sizes["unit"]
    if every_unit or n <= TRAJECTORY_UNITS:
        return list(range(n))
    change = np.abs(_phase_final(rate.sel(phase="nudged")) - _phase_final(rate.sel(phase="free")))
    active = np.nanmean(rate.sel(phase="free").values, axis=0)
    order = np.lexsort((-active, -change))  # most changed first, then most active
    return sorted(order[:TRAJECTORY_UNITS].tolist())


def _phase_final(rate) -> np.ndarray:
    """(unit,) rates at the last recorded step of a (time, unit) phase trace."""
    values = np.asarray(rate.transpose("time", "unit").values)
    last = np.flatnonzero(~np.isnan(values[:, 0]))[-1]
    return values[last]


def first_hidden_weights(weights, attrs: dict):
    """The weights into the first population the input projects to.

    Returns
    -------
    W : xr.DataArray of shape (input units, hidden units)
    """
    pairs = [p.split("->") for p in str(attrs.get("projections", "")).split()]
    posts = {post for _, post in pairs}
    for pre, post in pairs:
        if pre not in posts:
            for var in weights.data_vars.values():
                if var.name.startswith("W_") and var.dims == (f"{pre}_unit", f"{post}_unit"):
                    return var
    raise ValueError("the run's weights name no projection from the input "
                     f"(projections: {attrs.get('projections')!r})")


def receptive_fields(run):
    """The first hidden population's incoming weights drawn as images.

    A unit's field is its column of ``W`` reshaped to the image (28 × 28 for
    MNIST), in a diverging colour map centred on 0 and scaled per unit.
    When the weights before learning were recorded (``--record-epochs 0``),
    the fields are what learning added, ``W − W₀``: the random initial
    weights would hide it after a few epochs.  With columns, each row of the
    grid is one column (its units side by side); otherwise the units fill a
    square-ish grid.  At most :data:`MAX_FIELDS` units are drawn.
    """
    plt = _pyplot()
    W = first_hidden_weights(run.weights, run.attrs)
    n_in, n_hidden = W.shape
    side = math.isqrt(n_in)
    if side * side != n_in:
        raise ValueError(f"{n_in} input units are not a square image; no receptive fields")
    values, what = np.asarray(W.values, float), "incoming weights W"
    initial = _initial_weights(run, str(W.name))
    if initial is not None:
        values, what = values - initial, "learned change of the incoming weights, W − W₀"
    post = W.dims[1].removesuffix("_unit")
    column = W.coords.get(f"{post}_column")
    shown = min(n_hidden, MAX_FIELDS)
    columns = None if column is None else np.asarray(column.values)[:shown]
    if columns is not None and len(np.unique(columns)) > 1:
        groups = [np.flatnonzero(columns == c) for c in np.unique(columns)]
        labels = [f"column {int(c)}" for c in np.unique(columns)]
    else:
        width = math.ceil(math.sqrt(shown))
        groups = [np.arange(r, min(r + width, shown)) for r in range(0, shown, width)]
        labels = None
    mosaic = _mosaic(values, groups, side)
    n_rows, n_cols = len(groups), max(len(g) for g in groups)
    fig, ax = plt.subplots(figsize=(0.42 * n_cols + 1.4, 0.42 * n_rows + 0.8),
                           constrained_layout=True)
    cmap = plt.get_cmap("RdBu_r").with_extremes(bad="white")
    ax.imshow(mosaic, cmap=cmap, vmin=-1, vmax=1, interpolation="nearest")
    ax.set_xticks([])
    if labels is not None:
        ax.set_yticks((np.arange(n_rows) + 0.5) * (side + 1) - 1, labels, fontsize=7)
        ax.tick_params(length=0)
    else:
        ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)
    more = f" (first {shown} of {n_hidden} units)" if shown < n_hidden else ""
    ax.set_title(f"{post}: {what}{more}\nred excitatory, blue inhibitory; each unit "
                 "scaled to its own largest |value|", fontsize=9)
    return fig


def _initial_weights(run, name: str):
    """The recorded weights of epoch 0 (before learning) for ``name``, or None."""
    history = run.weight_history
    if history is None or name not in history or 0 not in history.epoch.values:
        return None
    return np.asarray(history[name].sel(epoch=0).values, float)


def _mosaic(values, groups, side: int) -> np.ndarray:
    """Fields of the units in ``groups`` (one row each) tiled with 1-pixel NaN gaps.

    Parameters
    ----------
    values : (side * side, units) array
    groups : list of arrays of unit indices, one per row

    Returns
    -------
    (rows * (side + 1) - 1, columns * (side + 1) - 1) array, each field scaled
    to [-1, 1] by its own largest absolute value.
    """
    n_cols = max(len(g) for g in groups)
    step = side + 1
    out = np.full((len(groups) * step - 1, n_cols * step - 1), np.nan)
    for r, group in enumerate(groups):
        for c, unit in enumerate(group):
            field = values[:, unit].reshape(side, side)
            limit = np.abs(field).max() or 1.0
            out[r * step:r * step + side, c * step:c * step + side] = field / limit
    return out


def write_run_figures(run, directory: Path | None = None) -> list[Path]:
    """Draw every figure the run allows into ``directory`` (default ``RUN/figures``).

    Returns
    -------
    list of Path
        The PNGs written: ``learning_curves.png``, ``trajectories.png`` (with
        recorded traces), ``receptive_fields.png`` (when the input is a square
        image).
    """
    directory = Path(directory or Path(run.path) / "figures")
    directory.mkdir(parents=True, exist_ok=True)
    written = [io.write_figure(learning_curves(run), directory / "learning_curves.png")]
    if run.traces is not None:
        written.append(io.write_figure(phase_trajectories(run),
                                       directory / "trajectories.png"))
    n_in = first_hidden_weights(run.weights, run.attrs).shape[0]
    if math.isqrt(n_in) ** 2 == n_in:
        written.append(io.write_figure(receptive_fields(run),
                                       directory / "receptive_fields.png"))
    return written
