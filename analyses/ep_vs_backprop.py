"""EP against backprop: convergence on the embedded MNIST subset, over seeds.

Five methods train the 784-500-10 network of ``models/two_layer.py`` for the
same epochs, batch size and data (4,000 train / 1,000 held-out), each with the
learning rates chosen for it on a validation split: EP with the random-sign,
one-sided and symmetric estimators (torch twin), recurrent backprop (the same
network trained with the exact gradient) and feedforward backprop.  Figures:
held-out accuracy and loss per epoch and against wall-clock time, mean ± one
standard deviation over seeds.  Printed: final accuracy, epochs and seconds
to reach 90 % held-out accuracy, and how smooth each trajectory is (standard
deviation of the epoch-to-epoch accuracy changes after epoch 3).

Usage::

    python analyses/ep_vs_backprop.py [--quick] [--seeds 5] [--out runs/ep_vs_backprop]
"""

from __future__ import annotations

import argparse

import xarray as xr

from cortex_ep import io, sweeps

LEVEL = 0.9


def summarize(ds: xr.Dataset) -> list[str]:
    acc = ds.test_accuracy
    final = acc.isel(epoch=-1)
    epochs90 = sweeps.epochs_to_reach(acc, LEVEL)
    elapsed = ds.seconds.cumsum("epoch")
    seconds90 = elapsed.where(acc >= LEVEL).min("epoch")
    rough = acc.diff("epoch").isel(epoch=slice(2, None)).std("epoch")
    lines = [f"{'algorithm':<16}{'final held-out':>18}{'epochs to 90%':>16}"
             f"{'seconds to 90%':>17}{'roughness':>11}"]
    for m in ds.algorithm.values:
        e90 = epochs90.sel(algorithm=m)
        s90 = seconds90.sel(algorithm=m)
        lines.append(
            f"{m:<16}{100 * float(final.sel(algorithm=m).mean()):>9.2f} ± "
            f"{100 * float(final.sel(algorithm=m).std()):.2f}%"
            f"{float(e90.mean()):>10.1f} ± {float(e90.std()):.1f}"
            f"{float(s90.mean()):>11.2f} ± {float(s90.std()):.2f}"
            f"{100 * float(rough.sel(algorithm=m).mean()):>10.2f}"
            + ("" if bool(e90.notnull().all()) else "  (not every seed reached 90%)"))
    return lines


def plot(ds: xr.Dataset, out):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(16, 4.5))
    elapsed = ds.seconds.cumsum("epoch")
    for m in ds.algorithm.values:
        for ax, var in zip(axes[:2], ("test_accuracy", "test_loss")):
            curve = ds[var].sel(algorithm=m) * (100 if var == "test_accuracy" else 1)
            mean, sd = curve.mean("seed"), curve.std("seed")
            line, = ax.plot(ds.epoch, mean, marker="o", ms=3, label=m)
            ax.fill_between(ds.epoch, mean - sd, mean + sd, alpha=0.2,
                            color=line.get_color())
        t = elapsed.sel(algorithm=m).mean("seed")
        acc = 100 * ds.test_accuracy.sel(algorithm=m)
        axes[2].plot(t, acc.mean("seed"), marker="o", ms=3, label=m)
        axes[2].fill_between(t, acc.mean("seed") - acc.std("seed"),
                             acc.mean("seed") + acc.std("seed"), alpha=0.2)
    axes[0].axhline(100 * LEVEL, color="grey", ls=":", lw=1)
    axes[0].set_ylabel("held-out accuracy (%)")
    axes[1].set_ylabel("held-out loss ½‖y − d‖²")
    axes[2].set_ylabel("held-out accuracy (%)")
    axes[2].set_xscale("log")
    axes[2].set_xlabel("wall-clock time (s, 2-core CPU)")
    for ax in axes[:2]:
        ax.set_xlabel("epoch")
    axes[0].legend(fontsize=8)
    fig.suptitle(f"784-500-10 on the embedded MNIST subset, mean ± sd over "
                 f"{ds.sizes['seed']} seeds")
    return io.write_figure(fig, out / "ep_vs_backprop.png")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sweeps.add_sweep_arguments(parser, "runs/ep_vs_backprop", seeds=5, epochs=10)
    args = parser.parse_args(argv)
    out = io.check_writable_dir(args.out)
    if args.quick:
        grid = {"algorithm": list(sweeps.ALGORITHMS), "seed": [0, 1]}
        fixed = dict(epochs=3, train_size=400, test_size=200)
    else:
        grid = {"algorithm": list(sweeps.ALGORITHMS), "seed": list(range(args.seeds))}
        fixed = dict(epochs=args.epochs)
    sweeps.run_analysis("ep_vs_backprop", grid, sweeps.training_cell, out, fixed, plot, summarize,
                        scheduler=args.scheduler, workers=args.workers,
                        progress=not args.no_progress, attrs={"quick": int(args.quick)})

if __name__ == "__main__":
    main()
