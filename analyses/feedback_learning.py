"""How does separate feedback come to match the forward weights, and what does it cost?

Kolen, J. F. & Pollack, J. B. (1994), "Backpropagation without weight
transport"; Akrout, M. et al. (2019), "Deep learning without weight
transport" (Kolen–Pollack: W and B learn by the same local rule and both
decay); Lillicrap, T. P. et al. (2016), "Random synaptic feedback weights
support error backpropagation for deep learning" (feedback alignment: B fixed).

On the 784-500-10 network of ``models/two_layer.py``, the torch twin, the phase
rule and the model's training settings, from a random ``B`` (an independent
Glorot draw), for 10 epochs and 3 seeds, per epoch:

- the angle between ``W_h1_y`` and ``B_h1_y``;
- the cosine of the one-sided EP update at β = 0.01 to the exact gradient
  (implicit differentiation through the Jacobian) for every parameter, the
  hidden layer's ``W_x_h1`` above all: its update is the one feedback carries;
- accuracy on the held-out digits of the embedded split (4,000 / 1,000) or,
  with ``--split validation``, on 1,000 validation digits carved out of the
  4,000 training digits (3,000 left to train on).

Feedback: tied (weight transport, the reference), shared (B learns by W's
rule), fixed (feedback alignment) and Kolen–Pollack at several λ.  Each mode
trains at the rates ``cortex-ep train`` takes for it: the model's own, and
``KOLEN_POLLACK_LEARNING_RATES`` for Kolen–Pollack.  ``--tune`` instead runs
Kolen–Pollack over λ and the output rate on the validation split, and names
the setting with the best accuracy among those whose angle fell below 10°.

Writes ``feedback_learning.nc`` (or ``feedback_tuning.nc``), a figure and a
printed table.

Usage::

    python analyses/feedback_learning.py [--split held-out|validation] [--quick]
                                         [--seeds 3] [--epochs 10]
                                         [--out runs/feedback_learning]
    python analyses/feedback_learning.py --tune [--out runs/feedback_tuning]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import xarray as xr

from cortex_ep import io, sweeps

#: λ of the Kolen–Pollack rows of the comparison
DECAYS = (0.002, 0.005, 0.02)
#: the tuning grid: λ × the output projection's rate (input rate: the model's)
TUNE_DECAYS = (0.002, 0.005, 0.01, 0.02, 0.05)
TUNE_OUTPUT_RATES = (0.05, 0.1, 0.2, 0.4)
PARAMS = ("W_x_h1", "W_h1_y", "B_h1_y", "b_h1", "b_y")
ALIGNED_DEGREES = 10.0
VALIDATION = 1000


def feedback_modes(decays=DECAYS) -> list[str]:
    """The comparison's feedback labels: ``tied``, ``shared``, ``fixed``,
    ``kolen-pollack:λ`` (the labels of ``Projection.feedback_rule``)."""
    return ["tied", "shared", "fixed", *(f"kolen-pollack:{lam:g}" for lam in decays)]


def network(feedback: str, output_rate: float | None = None):
    """784-500-10 with this feedback label, at the rates ``cortex-ep train`` takes
    for it (or with the output projection's rate replaced)."""
    from cortex_ep import models
    from cortex_ep.model.spec import with_feedback, with_learning_rates

    module = models.load("two_layer")
    net = module.network()
    if feedback == "tied":
        return net, module.TRAINING
    learning, _, decay = feedback.partition(":")
    rates = models.tuned_learning_rates(module, "torch", feedback_learning=learning)
    rates = list(rates or [p.lr for p in net.projections])
    if output_rate is not None:
        rates[-1] = output_rate
    net = with_feedback(with_learning_rates(net, rates), "separate", "random", learning,
                        float(decay) if decay else None)
    return net, module.TRAINING


def split_digits(split: str, train_size=None, test_size=None):
    """The embedded digits, or the validation split carved from their training part."""
    from cortex_ep import data

    digits = data.load(train_size=train_size, test_size=test_size, seed=0)
    if split == "validation":
        digits = data.validation_split(digits, min(VALIDATION, len(digits.y_train) // 4), 0)
    return digits


def feedback_cell(feedback: str, seed: int, *, split: str = "held-out", epochs: int = 10,
                  train_size: int | None = None, test_size: int | None = None,
                  gradient_batch: int = 20, output_rate: float | None = None,
                  cosines: bool = True) -> xr.Dataset:
    """Train one setting; history, W–B angle and gradient cosines per epoch
    (epoch 0: the initial weights)."""
    import torch

    from cortex_ep import Relaxation, TrainConfig, data, train
    from cortex_ep.gradients.alignment import alignment_history
    from cortex_ep.model.estimators import Estimator
    from cortex_ep.recordings import run as results

    torch.set_num_threads(1)
    net, defaults = network(feedback, output_rate)
    config = TrainConfig(epochs=epochs, batch_size=defaults["batch_size"], seed=seed,
                         estimator=Estimator(defaults["estimator"], defaults["beta"]),
                         relaxation=Relaxation(defaults["free_steps"],
                                               defaults["nudged_steps"]),
                         engine="torch")
    digits = split_digits(split, train_size, test_size)
    idx = data.stratified_indices(digits.y_train, gradient_batch, 0)
    x, d = digits.x_train[idx], data.one_hot(digits.y_train[idx], net.output.size)
    with tempfile.TemporaryDirectory() as tmp:
        # one recorded probe digit per epoch keeps the weights of every epoch
        # the whole curve: a run whose output units fall silent warns and goes on
        history, _, _ = train(net, digits, config, out=Path(tmp), record=1,
                              record_epochs=range(0, epochs + 1), progress=False,
                              on_divergence="warn")
        run = results.open_run(tmp, chunks=False)  # no nested dask inside a dask worker
        history = alignment_history(net, history, run.weight_history, x, d, PARAMS, cosines)
    history.attrs = {"split": split, "learning_rates": " ".join(
        f"{p.lr:g}" for p in net.projections)}
    return history


def _band(ax, da, label, **kw):
    mean, sd = da.mean("seed"), da.std("seed")
    line, = ax.plot(da.epoch, mean, marker="o", ms=3, label=label, **kw)
    ax.fill_between(da.epoch, mean - sd, mean + sd, alpha=0.2, color=line.get_color())


def plot(ds: xr.Dataset, out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(16, 4.6))
    for fb in ds.feedback.values:
        cell = ds.sel(feedback=fb)
        label = fb.replace(":", " λ=")
        if fb != "tied":
            _band(axes[0], cell.alignment_angle, label)
        else:
            axes[0].plot([], [])  # keep each mode's colour the same in every panel
        _band(axes[1], cell.gradient_cosine.sel(param="W_x_h1"), label)
        _band(axes[2], 100 * cell.test_accuracy.sel(epoch=slice(1, None)), label)
    axes[0].axhline(ALIGNED_DEGREES, color="k", lw=0.8, ls=":")
    axes[0].set_ylabel("angle between W_h1_y and B_h1_y (degrees)")
    axes[1].set_ylabel("cosine of the EP update of W_x_h1 to the exact gradient")
    axes[2].set_ylabel(f"{ds.attrs['split']} accuracy (%)")
    for ax in axes:
        ax.set_xlabel("epoch (0: initial weights)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"784-500-10, torch twin, phase rule, random B at the start: mean ± sd "
                 f"over {ds.sizes['seed']} seeds ({ds.attrs['split']} split)")
    return io.write_figure(fig, out / "feedback_learning.png")


def summarize(ds: xr.Dataset) -> list[str]:
    last = ds.isel(epoch=-1)
    tied = 100 * last.test_accuracy.sel(feedback="tied")
    lines = [f"after {int(last.epoch)} epochs, mean ± sd over {ds.sizes['seed']} seeds "
             f"({ds.attrs['split']} accuracy; cosine: the W_x_h1 update to the exact "
             "gradient)",
             f"{'feedback':<22}{'rates':>11}{'angle (°)':>14}{'cosine W_x_h1':>17}"
             f"{'accuracy (%)':>16}{'vs tied':>9}"]
    for fb in ds.feedback.values:
        cell = last.sel(feedback=fb)
        acc = 100 * cell.test_accuracy
        angle = (f"{float(cell.alignment_angle.mean()):.1f} ± "
                 f"{float(cell.alignment_angle.std()):.1f}" if fb != "tied" else "-")
        cos = cell.gradient_cosine.sel(param="W_x_h1")
        lines.append(f"{fb.replace(':', ' λ='):<22}{str(cell.rates.values):>11}"
                     f"{angle:>14}{float(cos.mean()):>10.3f} ± {float(cos.std()):.3f}"
                     f"{float(acc.mean()):>9.2f} ± {float(acc.std()):.2f}"
                     f"{float(acc.mean() - tied.mean()):>+9.2f}")
    return lines


def tune(args, out: Path) -> None:
    """Kolen–Pollack over λ × output rate on the validation split; the choice."""
    seeds = [0] if args.quick else list(range(args.seeds))
    fixed = dict(split="validation", epochs=2 if args.quick else args.epochs, cosines=False,
                 **(dict(train_size=400, test_size=100) if args.quick else {}))
    decays = TUNE_DECAYS[:2] if args.quick else TUNE_DECAYS
    rates = TUNE_OUTPUT_RATES[-2:] if args.quick else TUNE_OUTPUT_RATES

    def cell(decay, output_rate, seed, **kw):
        return feedback_cell(f"kolen-pollack:{decay:g}", seed, output_rate=output_rate, **kw)

    grid = {"decay": list(decays), "output_rate": list(rates), "seed": seeds}
    ds = sweeps.run_sweep(grid, cell, out / "cells", args.scheduler, args.workers,
                          progress=not args.no_progress, fixed=fixed)
    tied = sweeps.run_sweep({"feedback": ["tied"], "seed": seeds}, feedback_cell,
                            out / "cells", args.scheduler, args.workers,
                            progress=not args.no_progress, fixed=fixed)
    ds["tied_accuracy"] = tied.test_accuracy.sel(feedback="tied")
    io.write_dataset(ds, out / "feedback_tuning.nc")
    last = ds.isel(epoch=-1)
    acc, angle = 100 * last.test_accuracy.mean("seed"), last.alignment_angle.mean("seed")
    print(f"Kolen–Pollack on the validation split after {int(last.epoch)} epochs, mean of "
          f"{len(seeds)} seeds: accuracy % (angle °); tied "
          f"{100 * float(last.tied_accuracy.mean()):.2f} %")
    print(f"{'λ':>8}" + "".join(f"{'out lr ' + format(r, 'g'):>18}" for r in rates))
    for lam in decays:
        print(f"{lam:>8g}" + "".join(
            f"{float(acc.sel(decay=lam, output_rate=r)):>10.2f} ({float(angle.sel(decay=lam, output_rate=r)):>4.1f})"  # noqa: E501
            for r in rates))
    aligned = acc.where(angle < ALIGNED_DEGREES)
    if bool(aligned.notnull().any()):
        best = aligned.where(aligned == aligned.max(), drop=True)
        print(f"chosen (best accuracy with the angle below {ALIGNED_DEGREES:g}°): λ = "
              f"{float(best.decay[0]):g}, output rate {float(best.output_rate[0]):g}")
    else:
        print(f"no setting brought the angle below {ALIGNED_DEGREES:g}°")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sweeps.add_sweep_arguments(parser, "runs/feedback_learning", seeds=3, epochs=10)
    parser.add_argument("--split", choices=("held-out", "validation"), default="held-out",
                        help="accuracy on the embedded split's held-out digits, or on a "
                             "validation split of its training digits")
    parser.add_argument("--tune", action="store_true",
                        help="choose Kolen–Pollack's λ and output rate on the validation "
                             "split instead")
    args = parser.parse_args(argv)
    out = io.check_writable_dir(args.out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    if args.tune:
        tune(args, out)
        print(f"data: {out / 'feedback_tuning.nc'}; {time.perf_counter() - start:.0f} s")
        return
    if args.quick:
        seeds, fixed = [0, 1], dict(epochs=2, train_size=200, test_size=100,
                                    gradient_batch=2)
    else:
        seeds, fixed = list(range(args.seeds)), dict(epochs=args.epochs)
    grid = {"feedback": feedback_modes(), "seed": seeds}
    ds = sweeps.run_sweep(grid, feedback_cell, out / "cells", args.scheduler, args.workers,
                          progress=not args.no_progress, fixed=dict(split=args.split, **fixed))
    ds["rates"] = ("feedback", [" / ".join(f"{p.lr:g}" for p in network(fb)[0].projections)
                                for fb in ds.feedback.values])
    ds.attrs.update(split=args.split, quick=int(args.quick))
    io.write_dataset(ds, out / "feedback_learning.nc")
    figure = plot(ds, out)
    print("\n".join(summarize(ds)))
    print(f"data: {out / 'feedback_learning.nc'}; figure: {figure}; "
          f"{time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
