"""Cortical columns: column activity, free/nudged difference and selectivity during learning.

How do cortical columns change as the network learns (docs/findings/columns.rst)?
The 784 → 25 columns × 20 units → 10 network of ``models/cortical_columns.py`` is trained by EP (its ``TRAINING`` settings:
random-sign β = 0.5, batches of 20, 20 free and 4 nudged Euler steps of 5 ms)
on the embedded MNIST subset (4,000 train / 1,000 held-out).  Before learning
(epoch 0) and after every epoch, the free and nudged phases of a fixed probe
set of held-out digits (stratified over classes) are recorded, and
:func:`cortex_ep.recordings.columns.column_metrics` reduces them, with the weights of
the same moments, to per-column quantities: activity, the nudged − free rate
difference over time (EP's local learning signal), the column × digit tuning
matrix, selectivity index, mutual information (MI) with the digit, alignment
of the nudge with the column's preferred digit, weight change, and the
representational similarity between columns.  Added here: the accuracy of
the probe digits' free-phase output (also before learning), the held-out
accuracy from the training history, and a label-shuffled MI control (the
plug-in MI is biased upward; the control measures that bias at the same N).

Outputs (in ``--out``): ``column_metrics.nc``, the figures
``columns_selectivity.png`` (selectivity, MI and preferred digit per column
and epoch), ``columns_difference.png`` (nudged − free difference traces in ms,
first / middle / last recorded epoch), ``columns_tuning.png`` (tuning and
similarity matrices, first vs last recorded epoch) and ``columns_learning.png``
(summary over epochs), and the training run itself in ``<out>/run`` (open it
with :func:`cortex_ep.recordings.run.open_run`).  The full mode also copies the
figures to ``docs/figures/``.  Printed: one line per recorded epoch and a few
sentences computed from the numbers.

Engines.  The full mode uses Brian2 (cpp_standalone): once compiled, an epoch
takes ≈ 3 s on a 2-core CPU and the whole script ≈ 1 minute (≈ 2 minutes when
the C++ projects must first be compiled).  ``--engine torch`` (the twin)
gives the same numbers to within a few per cent.  The quick mode uses the
twin (no compilation).

Usage::

    python analyses/columns.py [--quick] [--out runs/columns] [--engine brian|torch]
                               [--epochs 10] [--record 100] [--seed 0]
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

import numpy as np
import xarray as xr
from cortex_ep.models import load as load_model

from cortex_ep import Relaxation, TrainConfig, data, io, train
from cortex_ep.engines.registry import make_engine
from cortex_ep.model.estimators import Estimator
from cortex_ep.recordings import columns
from cortex_ep.recordings.run import open_run

MODEL = "cortical_columns"
LAYER = "h1"
OUTPUT = "y"
BINS = 4            # MI rate bins over each column's range (cortex_ep.recordings.columns)
SHUFFLES = 20       # label permutations for the MI control
DOCS = Path(__file__).resolve().parents[1] / "docs" / "figures"
FIGURES = ("columns_selectivity.png", "columns_difference.png", "columns_tuning.png",
           "columns_learning.png")
QUICK = dict(train_size=300, test_size=100, epochs=2, record=20, engine="torch")
FULL = dict(train_size=None, test_size=None, epochs=10, record=100, engine="brian")


# ---------------------------------------------------------------- training


def train_columns(run_dir: Path, digits: data.Digits, engine_name: str, epochs: int,
                  record: int, seed: int, progress: bool):
    """Train the column model, recording ``record`` probe digits at epochs 0 … ``epochs``."""
    model = load_model(MODEL)
    net, settings = model.network(), model.TRAINING
    config = TrainConfig(epochs=epochs, batch_size=settings["batch_size"], seed=seed,
                         estimator=Estimator(settings["estimator"], settings["beta"]),
                         relaxation=Relaxation(settings["free_steps"],
                                               settings["nudged_steps"]),
                         engine=engine_name)
    engine = make_engine(net, config)
    if run_dir.exists():  # this script's own run from before: start afresh
        shutil.rmtree(run_dir)
    history, _, _ = train(net, digits, config, out=run_dir, record=record,
                          record_epochs=range(epochs + 1), progress=progress,
                          extra_attrs={"model": MODEL}, engine=engine)
    return history, config


# ---------------------------------------------------------------- metrics


def _final_free(traces: xr.Dataset, layer: str) -> xr.DataArray:
    return columns.final_rates(traces, layer).sel(phase="free", drop=True)


def probe_accuracy(traces: xr.Dataset) -> xr.DataArray:
    """Fraction of probe digits whose free-phase output peaks at the label, per epoch."""
    output = _final_free(traces, OUTPUT)
    guess = output.argmax("unit")
    label = traces["label"].astype(np.int64)
    return (guess == label).mean("sample").assign_attrs(
        units="1", long_name="accuracy of the free-phase output on the probe digits")


def shuffled_information(traces: xr.Dataset, bins: int, shuffles: int,
                         seed: int) -> xr.DataArray:
    """MI of each column with permuted labels, mean over ``shuffles`` permutations.

    Computed on a one-time-step copy of the traces holding only each phase's
    final rate, which is all :func:`cortex_ep.recordings.columns.mutual_information` uses.
    """
    final = columns.final_rates(traces, LAYER)
    compact = final.expand_dims(time=[0.0], axis=3).to_dataset(name="rate")
    compact["label"] = traces["label"]
    rng = np.random.default_rng(seed)
    labels = compact["label"].values
    values = [columns.mutual_information(
        compact.assign(label=("sample", rng.permutation(labels))), LAYER, bins)
        for _ in range(shuffles)]
    return xr.concat(values, "shuffle").mean("shuffle").assign_attrs(
        units="bit", long_name=f"plug-in MI with shuffled labels (mean of {shuffles})")


def compute_metrics(run_dir: Path, seed: int) -> xr.Dataset:
    run = open_run(run_dir)
    # the rates alone fit in memory (≈ 17 MB per recorded epoch of 100 digits), and the
    # reductions are several times faster on them than on the lazy recordings
    traces = run.traces.drop_vars(["s", "image"], errors="ignore").load()
    metrics = columns.column_metrics(traces, run.weight_history.load(), LAYER, bins=BINS)
    metrics["probe_accuracy"] = probe_accuracy(traces)
    metrics["mutual_information_shuffled"] = shuffled_information(traces, BINS, SHUFFLES, seed)
    for name in ("test_accuracy", "train_accuracy"):
        metrics[name] = run.history[name].reindex(epoch=metrics.epoch).assign_attrs(
            units="1", long_name=f"{name.replace('_', ' ')} after the epoch (from the "
            "training history; none before learning)")
    metrics.attrs.update({k: v for k, v in run.attrs.items()
                          if k in ("network", "network_name", "columns", "engine", "target",
                                   "estimator", "beta", "free_steps", "nudged_steps", "dt_ms",
                                   "tau_ms", "train_size", "test_size", "seed", "data",
                                   "batch_size", "lateral_learning_rates")})
    metrics.attrs["probe_size"] = int(metrics.sizes["sample"])
    return metrics


# ---------------------------------------------------------------- summary


def _cell(x, spec: str, width: int, suffix: str = "") -> str:
    """``x`` formatted with ``spec`` (and ``suffix``), or a dash, right-aligned in ``width``."""
    text = format(float(x), spec) + suffix if np.isfinite(x) else "—"
    return format(text, f">{width}")


def summarize(m: xr.Dataset) -> list[str]:
    sel, mi, shuf = m.selectivity, m.mutual_information, m.mutual_information_shuffled
    diff, aligned = m.abs_final_difference, m.aligned_fraction
    head = (f"{'epoch':>5} {'probe acc':>9} {'held-out':>9} {'selectivity':>15} "
            f"{'MI bits (shuffled)':>19} {'|nudged-free|':>13} {'aligned':>8} "
            f"{'similarity':>10} {'corr':>6}")
    lines = [head]
    for e in m.epoch.values:
        at = dict(epoch=e)
        lines.append(
            f"{int(e):>5} {_cell(100 * m.probe_accuracy.sel(at), '.1f', 9, '%')} "
            f"{_cell(100 * m.test_accuracy.sel(at), '.1f', 9, '%')} "
            f"{float(sel.sel(at).mean()):>7.3f} ± {float(sel.sel(at).std()):.3f} "
            f"{float(mi.sel(at).mean()):>10.3f} ({float(shuf.sel(at).mean()):.3f}) "
            f"{float(diff.sel(at).mean()):>13.2e} {_cell(aligned.sel(at).mean(), '.3f', 8)} "
            f"{float(m.mean_similarity.sel(at)):>10.3f} "
            f"{_cell(m.difference_weight_correlation.sel(at), '.2f', 6)}")
    first, last = m.epoch.values[0], m.epoch.values[-1]
    n_col = m.sizes["column"]

    def mean(da, e):
        return float(da.sel(epoch=e).mean())

    def change(a, b, spec=".3g"):
        verb = "rose" if b > a else "fell" if b < a else "stayed"
        ratio = f" (×{b / a:.2f})" if a != 0 and np.isfinite(a) and np.isfinite(b) else ""
        return f"{verb} from {a:{spec}} to {b:{spec}}{ratio}"

    n_up = int((sel.sel(epoch=last) > sel.sel(epoch=first)).sum())
    excess0, excess1 = (mean(mi, e) - mean(shuf, e) for e in (first, last))
    pref = m.preferred_digit.sel(epoch=last)
    distinct = len({int(p) for p in pref.values if p >= 0})
    kept = int((m.preferred_digit.sel(epoch=first) == pref).sum())
    lines += ["", (
        f"From epoch {first} to epoch {last} the mean column selectivity index "
        f"{change(mean(sel, first), mean(sel, last))}, higher in {n_up} of {n_col} columns; "
        f"the mean MI with the digit {change(mean(mi, first), mean(mi, last))} bits, "
        f"{excess0:.3f} and {excess1:.3f} bits above the shuffled-label control. "
        f"At epoch {last} the columns prefer {distinct} distinct digits; {kept} of {n_col} "
        f"prefer the digit they preferred at epoch {first}.")]
    peak = int(m.epoch.values[int(diff.mean("column").argmax("epoch"))])
    accuracy = [100 * float(m.probe_accuracy.sel(epoch=e)) for e in (first, last)]
    lines.append(
        f"The mean |nudged − free| final rate difference "
        f"{change(mean(diff, first), mean(diff, last))} (largest at epoch {peak}) while the "
        f"probe accuracy went from {accuracy[0]:.1f}% to {accuracy[1]:.1f}%. The fraction "
        f"of samples nudged in the direction set by the column's preferred digit (up for "
        f"that digit, down for the others) "
        f"{change(mean(aligned, first), mean(aligned, last), '.3f')}; "
        f"the signed mean difference at epoch {last} was "
        f"{mean(m.difference_preferred, last):.2e} on samples of the preferred digit and "
        f"{mean(m.difference_other, last):.2e} on the others (epoch {first}: "
        f"{mean(m.difference_preferred, first):.2e} and {mean(m.difference_other, first):.2e}).")
    corr = m.difference_weight_correlation.dropna("epoch")
    if corr.size:
        similarity = [float(m.mean_similarity.sel(epoch=e)) for e in (first, last)]
        lines.append(
            f"The mean between-column response similarity "
            f"{change(similarity[0], similarity[1], '.3f')}; across columns, the |difference| "
            f"at one recorded epoch correlated with the weight change that followed with "
            f"r = {float(corr.mean()):.2f} on average (from {float(corr.min()):.2f} to "
            f"{float(corr.max()):.2f} over {corr.size} epochs).")
    return lines


# ---------------------------------------------------------------- figures


def _column_order(m: xr.Dataset) -> np.ndarray:
    """Columns sorted by preferred digit at the last epoch, then by selectivity (high first)."""
    last = m.isel(epoch=-1)
    return np.lexsort((-last.selectivity.values, last.preferred_digit.values))


def _epochs_shown(m: xr.Dataset):
    e = m.epoch.values
    return list(dict.fromkeys([e[0], e[len(e) // 2], e[-1]]))


def plot(m: xr.Dataset, out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap
    from matplotlib.ticker import MaxNLocator

    order = _column_order(m)
    cols = m.column.values[order]
    epochs = m.epoch.values
    n_probe = m.sizes["sample"]
    title = (f"{m.attrs.get('network_name', MODEL)}: {m.sizes['column']} columns of layer "
             f"{LAYER}, {m.attrs.get('engine', '')} engine, {n_probe} probe digits")
    paths = []

    # 1. selectivity, MI and preferred digit per column over epochs
    fig, axes = plt.subplots(1, 3, figsize=(16, 6), constrained_layout=True)
    extent = dict(aspect="auto", interpolation="nearest")  # rows as in columns_tuning.png
    for ax, var, label, cmap in ((axes[0], "selectivity", "selectivity index", "viridis"),
                                 (axes[1], "mutual_information", "MI with digit (bit)",
                                  "magma")):
        img = ax.imshow(m[var].sel(column=cols).T.values, cmap=cmap, **extent)
        fig.colorbar(img, ax=ax)  # the panel's title names the colour's quantity: a
        ax.set_title(label)       # colour-bar label would sit by the next panel's y-axis
    pref = m.preferred_digit.sel(column=cols).T.values.astype(float)
    cmap10 = ListedColormap(plt.get_cmap("tab10").colors)
    cmap10.set_bad("white")
    img = axes[2].imshow(np.where(pref < 0, np.nan, pref), cmap=cmap10, vmin=-0.5, vmax=9.5,
                         **extent)
    fig.colorbar(img, ax=axes[2], ticks=range(10), label="preferred digit (white: silent)")
    axes[2].set_title("preferred digit")
    for ax in axes:
        ax.set_xticks(range(len(epochs)), epochs)
        ax.set_yticks(range(len(cols)), cols, fontsize=7)
        ax.set_xlabel("epoch (0 = before learning)")
    axes[0].set_ylabel("column (sorted by final preferred digit)")
    for ax in axes[1:]:
        ax.set_ylabel("column")
    shuffled = float(m.mutual_information_shuffled.mean())
    axes[1].set_title(f"MI with digit (bit); shuffled labels: {shuffled:.2f} on average")
    fig.suptitle(title)
    paths.append(io.write_figure(fig, out / FIGURES[0]))

    # 2. nudged - free difference traces (ms) per column, first / middle / last epoch
    shown = _epochs_shown(m)
    fig, axes = plt.subplots(2, len(shown), figsize=(5 * len(shown), 7.5), sharex=True,
                             sharey="row", squeeze=False, constrained_layout=True)
    t = m.time.values
    colours = plt.get_cmap("tab10")
    for j, e in enumerate(shown):
        for i, (var, label) in enumerate((("difference", "mean nudged − free rate"),
                                          ("abs_difference", "mean |nudged − free| rate"))):
            ax = axes[i, j]
            for c in m.column.values:
                p = int(m.preferred_digit.sel(epoch=e, column=c))
                ax.plot(t, m[var].sel(epoch=e, column=c), lw=0.8, alpha=0.6,
                        color=colours(p) if p >= 0 else "grey")
            ax.plot(t, m[var].sel(epoch=e).mean("column"), color="black", lw=2.5,
                    label="mean over columns")
            ax.axhline(0, color="grey", lw=0.5, ls=":")
            if j == 0:
                ax.set_ylabel(label)
            if i == 0:
                ax.set_title(f"epoch {e}")
            else:
                ax.set_xlabel("time since the nudge began (ms)")
    axes[0, 0].legend(fontsize=8, title="thin: one column,\ncoloured by preferred digit",
                      title_fontsize=8)
    fig.suptitle(f"EP's learning signal per column: nudged − free rate, mean over {n_probe} "
                 "probe digits (β toward the target)")
    paths.append(io.write_figure(fig, out / FIGURES[1]))

    # 3. tuning matrices and representational similarity, first vs last epoch
    first, last = epochs[0], epochs[-1]
    fig, axes = plt.subplots(2, 2, figsize=(13, 12), constrained_layout=True)
    vmax = float(m.tuning.max())
    for j, e in enumerate((first, last)):
        tun = m.tuning.sel(epoch=e, column=cols)
        img = axes[0, j].imshow(tun.values, aspect="auto", cmap="viridis", vmin=0, vmax=vmax,
                                interpolation="nearest")
        axes[0, j].set_xticks(range(m.sizes["digit"]), m.digit.values)
        axes[0, j].set_yticks(range(len(cols)), cols, fontsize=7)
        axes[0, j].set_xlabel("digit")
        axes[0, j].set_title(f"tuning, epoch {e}: mean free-phase rate "
                             f"(selectivity {float(m.selectivity.sel(epoch=e).mean()):.3f})")
        fig.colorbar(img, ax=axes[0, j], label="rate ρ")
        sim = m.similarity.sel(epoch=e, column=cols, column_other=cols)
        img = axes[1, j].imshow(sim.values, cmap="RdBu_r", vmin=-1, vmax=1,
                                interpolation="nearest")
        axes[1, j].set_xticks(range(len(cols)), cols, fontsize=6, rotation=90)
        axes[1, j].set_yticks(range(len(cols)), cols, fontsize=6)
        axes[1, j].set_title(f"column similarity, epoch {e} (mean off-diagonal "
                             f"{float(m.mean_similarity.sel(epoch=e)):.3f})")
        fig.colorbar(img, ax=axes[1, j], label="correlation across probe digits")
    axes[0, 0].set_ylabel("column (sorted by final preferred digit)")
    axes[1, 0].set_ylabel("column")
    fig.suptitle(title)
    paths.append(io.write_figure(fig, out / FIGURES[2]))

    # 4. learning summary over epochs
    fig, axes = plt.subplots(2, 4, figsize=(18, 7.5), constrained_layout=True)
    axes = axes.ravel()

    def band(ax, da, label, colour="C0"):
        mean, sd = da.mean("column"), da.std("column")
        ax.plot(epochs, mean, marker="o", ms=3, color=colour, label=label)
        ax.fill_between(epochs, mean - sd, mean + sd, alpha=0.2, color=colour)

    axes[0].plot(epochs, 100 * m.probe_accuracy, marker="o", ms=3,
                 label=f"probe ({n_probe} digits)")
    axes[0].plot(epochs, 100 * m.test_accuracy, marker="s", ms=3,
                 label=f"held-out ({m.attrs.get('test_size', '')} digits)")
    axes[0].set_ylabel("accuracy (%)")
    axes[0].legend(fontsize=8)
    band(axes[1], m.selectivity, "mean ± sd over columns")
    axes[1].set_ylabel("selectivity index")
    band(axes[2], m.mutual_information, "labels")
    band(axes[2], m.mutual_information_shuffled, "shuffled labels", "C3")
    axes[2].set_ylabel("MI with digit (bit)")
    axes[2].legend(fontsize=8)
    band(axes[3], m.abs_final_difference, "mean ± sd over columns")
    axes[3].set_ylabel("mean |nudged − free| final rate")
    band(axes[4], m.aligned_fraction, "mean ± sd over columns")
    axes[4].axhline(0.5, color="grey", lw=0.5, ls=":")
    axes[4].set_ylabel("fraction nudged toward preference")
    axes[5].plot(epochs, m.mean_similarity, marker="o", ms=3)
    axes[5].set_ylabel("mean between-column similarity")
    band(axes[6], m.relative_weight_change, "mean ± sd over columns")
    axes[6].set_ylabel("relative weight change since last epoch")
    axes[7].plot(epochs, m.difference_weight_correlation, marker="o", ms=3)
    axes[7].axhline(0, color="grey", lw=0.5, ls=":")
    axes[7].set_ylabel("corr(|difference|, next weight change)")
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[1].legend(fontsize=8)
    fig.suptitle(title)
    paths.append(io.write_figure(fig, out / FIGURES[3]))
    return paths


# ---------------------------------------------------------------- main


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="torch twin, 300 train / 100 held-out digits, 2 epochs, 20 probe "
                             "digits: a few seconds")
    parser.add_argument("--out", type=Path, default=Path("runs/columns"),
                        help="directory for the run, column_metrics.nc and the figures")
    parser.add_argument("--engine", choices=("brian", "torch"), default=None,
                        help="default: brian (cpp_standalone); torch with --quick")
    parser.add_argument("--epochs", type=int, default=None, help="default 10 (2 with --quick)")
    parser.add_argument("--record", type=int, default=None,
                        help="probe digits recorded at every epoch; default 100 (20 with "
                             "--quick)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    settings = dict(QUICK if args.quick else FULL)
    for name in ("engine", "epochs", "record"):
        if getattr(args, name) is not None:
            settings[name] = getattr(args, name)
    if settings["epochs"] < 1:
        parser.error(f"--epochs {settings['epochs']}: give at least 1")
    if settings["record"] < 2:
        parser.error(f"--record {settings['record']}: give at least 2 probe digits")
    try:
        out = io.check_writable_dir(args.out)
    except ValueError as err:
        parser.error(str(err))
    out.mkdir(parents=True, exist_ok=True)

    start = time.perf_counter()
    digits = data.load(train_size=settings["train_size"], test_size=settings["test_size"],
                       seed=args.seed)
    if settings["record"] > len(digits.y_test):
        parser.error(f"--record {settings['record']}: there are only {len(digits.y_test)} "
                     "held-out digits")
    _, config = train_columns(out / "run", digits, settings["engine"],
                              settings["epochs"], settings["record"], args.seed,
                              not args.no_progress)
    trained = time.perf_counter() - start
    metrics = compute_metrics(out / "run", args.seed)
    metrics.attrs.update(quick=int(args.quick), training_seconds=trained,
                         mutual_information_shuffles=SHUFFLES)
    path = io.write_dataset(metrics, out / "column_metrics.nc")
    figures = plot(metrics, out)
    if not args.quick:
        DOCS.mkdir(parents=True, exist_ok=True)
        for figure in figures:
            with io.atomic_path(DOCS / figure.name) as tmp:
                shutil.copyfile(figure, tmp)
    total = time.perf_counter() - start
    engine = config.engine + (f"/{config.target}" if config.engine == "brian" else "")
    print(f"{MODEL} on {metrics.attrs.get('train_size')} train / "
          f"{metrics.attrs.get('test_size')} held-out digits, {engine}, "
          f"{settings['epochs']} epochs, {metrics.sizes['sample']} probe digits recorded at "
          f"epochs {metrics.epoch.values.min()}–{metrics.epoch.values.max()}; layer {LAYER}: "
          f"{metrics.sizes['column']} columns; MI: {BINS} rate bins, shuffled control over "
          f"{SHUFFLES} permutations")
    print("\n".join(summarize(metrics)))
    print(f"\ndata: {path}; figures: {', '.join(str(f) for f in figures)}"
          + ("" if args.quick else f" (copied to {DOCS})"))
    print(f"wall time {total:.1f} s (training and recording {trained:.1f} s)")


if __name__ == "__main__":
    main()
