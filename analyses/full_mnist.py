"""Full-MNIST results: the table and learning curves of a set of recorded runs.

Reads the ``history.nc`` of every run directory given (training on all 60,000
digits, scored on the 10,000 test digits; runs scored on a validation split
are listed apart), groups the runs that differ only in their seed, and prints
one row per group: final test accuracy per seed, mean ± sd, best epoch, final
training accuracy and the median seconds per epoch.  The learning curves go to
``--figure``.

The runs of the README's table were made with::

    cortex-ep data fetch mnist
    cortex-ep train --engine torch --data mnist --epochs 20 --lr-schedule cosine \\
        --shift 2 --seed S --out runs/full/ep_twin_shift2_sS
    cortex-ep train --engine backprop ...   (the same options)
    cortex-ep train --engine brian ...      (seed 0)
    cortex-ep train --engine torch --neurons if ...   (spiking rows: the same options)

Spiking runs are rows of their own, named by their units, top rate and phases.

Usage::

    python analyses/full_mnist.py runs/full/*  [--figure docs/figures/full_mnist.png]
        [--per-epoch]   (every run's test accuracy at every epoch)
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

import numpy as np

from cortex_ep import io

METHODS = {"torch": "EP, torch twin", "brian": "EP, Brian2", "numpy": "EP, numpy reference",
           "rbp": "recurrent BP", "backprop": "feedforward BP"}
#: how the spiking rows name their units
NEURONS = {"spiking": "Poisson", "if": "integrate-and-fire"}


def method(attrs) -> str:
    """The engine (the twin's float type where it is not the default), and for spiking
    runs the units, their top rate and phase lengths."""
    name = METHODS.get(attrs["engine"], attrs["engine"])
    if attrs["engine"] == "torch" and attrs.get("dtype") == "float64":
        name += " (float64)"
    neurons = str(attrs.get("neurons", "rate"))
    if neurons == "rate":
        return name
    return (f"spiking {name}, {NEURONS.get(neurons, neurons)} at "
            f"{float(attrs['spike_r_max_hz']):g} Hz, {float(attrs['spike_free_ms']):g} / "
            f"{float(attrs['spike_nudged_ms']):g} ms phases")


def describe(history) -> dict:
    """The settings that identify a group of runs (everything but the seed)."""
    a = history.attrs
    options = json.loads(a.get("cli_args", "{}"))
    return {"network": str(a["network"]), "method": method(a),
            "epochs": int(a["epochs"]), "shift": int(a.get("shift", 0)),
            "rates": " / ".join(f"{r:g}" for r in np.atleast_1d(a["learning_rates"])),
            "train_digits": int(a["train_size"]),
            "schedule": options.get("lr_schedule") or "constant",
            "validation": options.get("validation") is not None,
            "complete": history.sizes["epoch"] == int(a["epochs"])}


def load_groups(runs):
    groups = defaultdict(list)
    for run in runs:
        path = Path(run) / "history.nc"
        if not path.exists():
            continue
        history = io.read_dataset(path)
        key = tuple(sorted(describe(history).items()))
        groups[key].append((int(history.attrs["seed"]), history))
    return {k: sorted(v, key=lambda item: item[0]) for k, v in groups.items()}


def _order(item):
    k = dict(item[0])
    return (k["validation"], k["network"], k["method"], k["shift"], k["schedule"], k["rates"])


def table(groups) -> str:
    lines = ["| network, method | rates | shift | schedule | epochs | trained on | scored on "
             "| accuracy (seeds) | mean ± sd | best of any epoch (mean) | train | s / epoch (median) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for key, runs in sorted(groups.items(), key=_order):
        k = dict(key)
        final = np.array([100 * h.test_accuracy.values[-1] for _, h in runs])
        best = np.mean([100 * h.test_accuracy.values.max() for _, h in runs])
        train = np.mean([100 * h.train_accuracy.values[-1] for _, h in runs])
        seconds = np.median(np.concatenate([h.seconds.values for _, h in runs]))
        done = min(h.sizes["epoch"] for _, h in runs)
        epochs = k["epochs"] if k["complete"] else f"{done} of {k['epochs']}"
        spread = f"{final.mean():.2f} ± {final.std(ddof=1):.2f} %" if len(final) > 1 else ""
        lines.append(
            f"| {k['network']}, {k['method']} | {k['rates']} | {k['shift']} | {k['schedule']} "
            f"| {epochs} "
            f"| {k['train_digits']:,} | {'validation' if k['validation'] else 'test'} "
            f"| {', '.join(f'{v:.2f}' for v in final)} % "
            f"(seed{'s' if len(runs) > 1 else ''} {', '.join(str(s) for s, _ in runs)}) "
            f"| {spread} | {best:.2f} % | {train:.2f} % | {seconds:.0f} |")
    return "\n".join(lines)


def per_epoch(groups) -> str:
    """Test accuracy of every run at every epoch: one row per run, for comparing
    engines epoch by epoch (for example Brian2 against the twin at the same seed)."""
    rows = [(dict(key), seed, 100 * h.test_accuracy.values)
            for key, runs in sorted(groups.items(), key=_order) for seed, h in runs]
    n = max(len(acc) for _, _, acc in rows)
    lines = ["| run (seed) | " + " | ".join(str(e) for e in range(1, n + 1)) + " |",
             "|---|" + "---|" * n]
    for k, seed, acc in rows:
        cells = [f"{a:.2f}" for a in acc] + [""] * (n - len(acc))
        lines.append(f"| {k['network']}, {k['method']} ({seed}) | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def drawn(groups) -> dict:
    """The groups the figure shows: complete runs scored on the test set."""
    return {k: v for k, v in groups.items()
            if not dict(k)["validation"] and dict(k)["complete"]}


def figure(groups, path: Path) -> None:
    """One panel per network: a colour per method, solid with shifts, dashed without."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = drawn(groups)
    networks = sorted({dict(k)["network"] for k in shown}, key=len)
    methods = sorted({dict(k)["method"] for k in shown})
    colours = dict(zip(methods, plt.get_cmap("tab10").colors))
    fig, axes = plt.subplots(1, len(networks), figsize=(5.5 * len(networks), 5.5),
                             sharey=True, squeeze=False)
    for ax, network in zip(axes[0], networks):
        for key, runs in sorted(shown.items(), key=_order):
            k = dict(key)
            if k["network"] != network:
                continue
            curves = [100 * h.test_accuracy.values for _, h in runs]
            n = min(len(c) for c in curves)
            mean = np.mean([c[:n] for c in curves], axis=0)
            style = dict(color=colours[k["method"]], ls="-" if k["shift"] else "--")
            ax.plot(np.arange(1, n + 1), mean, marker="o", ms=3, **style,
                    label=f"{k['method']}, shift {k['shift']}, {k['schedule']} "
                          f"(n={len(curves)})")
            for c in curves:
                ax.plot(np.arange(1, len(c) + 1), c, alpha=0.25, lw=0.8, **style)
        ax.set_title(network)
        ax.set_xlabel("epoch")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.grid(alpha=0.3)
        # below the panel: inside it the labels hid the first epochs' curves
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.14))
    axes[0, 0].set_ylabel("test accuracy (%), 10,000 test digits")
    axes[0, 0].set_ylim(97.0, 99.1)
    fig.suptitle("Full MNIST, test accuracy per epoch (solid: random shifts of the "
                 "training digits; dashed: none)", fontsize=10)
    fig.tight_layout()
    io.write_figure(fig, path)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run directories")
    parser.add_argument("--figure", type=Path, default=None,
                        help="write the learning curves here (PNG)")
    parser.add_argument("--per-epoch", action="store_true",
                        help="also print every run's test accuracy at every epoch")
    args = parser.parse_args(argv)
    groups = load_groups(args.runs)
    if not groups:
        parser.error("none of the given directories holds a history.nc; give run "
                     "directories written by cortex-ep train")
    if args.figure is not None and not drawn(groups):
        parser.error("--figure draws runs that finished all their epochs and were scored "
                     "on the test set; none of the given runs is one: leave out --figure")
    print(table(groups))
    if args.per_epoch:
        print()
        print(per_epoch(groups))
    if args.figure is not None:
        figure(groups, args.figure)
        print(f"figure: {args.figure}")


if __name__ == "__main__":
    main()
