"""Batch size and learning rate: their effect on convergence for EP and backprop.

EP (random-sign, torch twin) and feedforward backprop train the 784-500-10
network of ``models/two_layer.py`` on the embedded subset over a grid of batch
sizes and learning-rate scales (the scale multiplies each method's validated
learning rates), over seeds.  Figures: heat maps of the final held-out
accuracy and of the epochs needed to reach 90 %, and the final accuracy
against the learning-rate scale for each batch size with standard-error bars.
Printed: the best cell of each method and how accuracy moves with batch size
at the validated rates.

Usage::

    python analyses/batch_size_lr.py [--quick] [--seeds 3] [--out runs/batch_size_lr]
"""

from __future__ import annotations

import argparse

import numpy as np
import xarray as xr

from cortex_ep import io, sweeps

ALGORITHMS = ("EP random-sign", "feedforward BP")
BATCH_SIZES = (5, 10, 20, 50, 100)
LR_FACTORS = (0.25, 0.5, 1.0, 2.0, 4.0)
LEVEL = 0.9


def summarize(ds: xr.Dataset) -> list[str]:
    final = ds.test_accuracy.isel(epoch=-1)
    mean = final.mean("seed")
    e90 = sweeps.epochs_to_reach(ds.test_accuracy, LEVEL)
    lines = []
    for m in ds.algorithm.values:
        cell = mean.sel(algorithm=m)
        b, s = np.unravel_index(int(np.argmax(cell.values)), cell.shape)
        best = cell.isel(batch_size=b, lr=s)
        lines.append(f"{m}: best final held-out accuracy {100 * float(best):.2f}% at batch "
                     f"{int(ds.batch_size[b])}, learning-rate scale {float(ds.lr[s]):g}")
        at_one = mean.sel(algorithm=m).sel(lr=1.0, method="nearest")
        epochs = e90.sel(algorithm=m).sel(lr=1.0, method="nearest").mean("seed")
        lines.append("  at the validated rates, by batch size: " + ", ".join(
            f"{int(bs)}: {100 * float(a):.1f}% ({float(e):.1f} epochs to 90%)"
            for bs, a, e in zip(ds.batch_size.values, at_one.values, epochs.values)))
    return lines


def plot(ds: xr.Dataset, out):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    final = 100 * ds.test_accuracy.isel(epoch=-1)
    e90 = sweeps.epochs_to_reach(ds.test_accuracy, LEVEL)
    n = ds.sizes["seed"]
    fig, axes = plt.subplots(ds.sizes["algorithm"], 3,
                             figsize=(16, 4.6 * ds.sizes["algorithm"]), squeeze=False,
                             constrained_layout=True)
    for row, m in enumerate(ds.algorithm.values):
        for col, (values, title, cmap) in enumerate(
                ((final.sel(algorithm=m).mean("seed"), "final held-out accuracy (%)",
                  "viridis"),
                 (e90.sel(algorithm=m).mean("seed"), "epochs to 90% (blank: never)",
                  "viridis_r"))):
            ax = axes[row, col]
            im = ax.imshow(values.values, cmap=cmap, aspect="auto", origin="lower")
            ax.set_xticks(range(ds.sizes["lr"]), [f"{v:g}" for v in ds.lr.values])
            ax.set_yticks(range(ds.sizes["batch_size"]),
                          [str(v) for v in ds.batch_size.values])
            for (i, j), v in np.ndenumerate(values.values):
                if np.isfinite(v):
                    ax.text(j, i, f"{v:.1f}", ha="center", va="center", fontsize=8,
                            color="w")
            ax.set_xlabel("learning-rate factor (× the validated rates)")
            ax.set_ylabel("batch size")
            ax.set_title(f"{m}: {title}")
            fig.colorbar(im, ax=ax)
        ax = axes[row, 2]
        for bs in ds.batch_size.values:
            curve = final.sel(algorithm=m, batch_size=bs)
            ax.errorbar(ds.lr, curve.mean("seed"), yerr=curve.std("seed") / np.sqrt(n),
                        marker="o", ms=3, capsize=2, label=f"batch {int(bs)}")
        ax.set_xscale("log")
        ax.minorticks_off()
        ax.set_xticks(ds.lr.values, [f"{v:g}" for v in ds.lr.values])
        ax.set_xlabel("learning-rate factor (× the validated rates)")
        ax.set_ylabel("final held-out accuracy (%)")
        ax.set_title(f"{m}: mean ± s.e.m. over {n} seeds")
        ax.legend(fontsize=7)
    return io.write_figure(fig, out / "batch_size_lr.png")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sweeps.add_sweep_arguments(parser, "runs/batch_size_lr", seeds=3, epochs=10)
    args = parser.parse_args(argv)
    out = io.check_writable_dir(args.out)
    if args.quick:
        grid = {"algorithm": list(ALGORITHMS), "batch_size": [10, 50], "lr": [0.5, 2.0],
                "seed": [0, 1]}
        fixed = dict(epochs=2, train_size=300, test_size=100)
    else:
        grid = {"algorithm": list(ALGORITHMS), "batch_size": list(BATCH_SIZES),
                "lr": list(LR_FACTORS), "seed": list(range(args.seeds))}
        fixed = dict(epochs=args.epochs)
    sweeps.run_analysis("batch_size_lr", grid, sweeps.training_cell, out, fixed, plot, summarize,
                        scheduler=args.scheduler, workers=args.workers,
                        progress=not args.no_progress, attrs={"quick": int(args.quick)})

if __name__ == "__main__":
    main()
