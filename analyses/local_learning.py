"""Local in time, no weight transport: what continual plasticity and separate feedback cost.

Ernoult et al. (2020), "Equilibrium Propagation with Continual Weight
Updates" (C-EP, and C-VF for asymmetric weights); Scellier et al. (2018),
"Generalization of Equilibrium Propagation to Vector Field Dynamics".

On the 784-500-10 network of ``models/two_layer.py`` and the embedded split
(4,000 training / 1,000 held-out digits), three measurements:

1. **Accuracy** after ``--epochs`` epochs for the plasticity rules {phase,
   continual} × feedback {tied, separate-transpose, separate-random}, over
   ``--seeds`` seeds in the torch twin, and in the Brian2 engine (seed 0) for
   continual+tied and continual+separate-random.  The continual rule trains
   with its own validated rates (``CONTINUAL_LEARNING_RATES``).
2. **The continual update against the exact gradient** after one epoch of
   continual training: the total update over one batch of 20 digits divided
   by the learning rate, for learning rates over six decades, at β = 0.01 and
   0.5 (one-sided) and β = 0.001 (symmetric), next to its lr → 0 limit.
3. **Feedback alignment**: the angle between ``W`` and ``B`` (the top-down
   matrix in ``W``'s layout; tied is ``B = W``) at every epoch, and the cosine
   of the EP update (one-sided, β = 0.01) to the exact gradient at every
   epoch (seed 0), by implicit differentiation with the Jacobian.

Writes ``local_learning.nc`` (accuracy and alignment), ``continual_cosine.nc``,
three figures and a printed table.

Usage::

    python analyses/local_learning.py [--quick] [--seeds 3] [--epochs 10]
                                      [--out runs/local_learning]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import xarray as xr

from cortex_ep import io, sweeps

RULES = ("phase", "continual")
FEEDBACK = ("tied", "separate-transpose", "separate-random")
#: parameters reported for every combination (B_h1_y is NaN where tied)
PARAMS = ("W_x_h1", "W_h1_y", "B_h1_y", "b_h1", "b_y")
GRADIENT_BETA = 0.01
#: (estimator, β) of the continual-versus-gradient check
COSINE_CHECKS = (("one-sided", 0.01), ("one-sided", 0.5), ("symmetric", 0.001))


def network(rule: str, feedback: str, model: str = "two_layer"):
    """The model's network with the rule's validated rates and the feedback mode."""
    from cortex_ep.models import load as load_model

    from cortex_ep.model.spec import with_feedback, with_learning_rates

    module = load_model(model)
    net = module.network()
    if rule == "continual":
        net = with_learning_rates(net, module.CONTINUAL_LEARNING_RATES)
    if feedback != "tied":
        net = with_feedback(net, "separate", feedback.split("-")[1])
    return net, module.TRAINING


def local_cell(rule: str, feedback: str, seed: int, *, engine: str = "torch",
               epochs: int = 10, train_size: int | None = None,
               test_size: int | None = None, gradient_batch: int = 20) -> xr.Dataset:
    """Train one combination; history, alignment angle and (seed 0) gradient cosine per
    epoch (epoch 0 = the initial weights)."""
    import torch

    from cortex_ep import Relaxation, TrainConfig, data, train
    from cortex_ep.gradients.alignment import alignment_history
    from cortex_ep.model.estimators import Estimator
    from cortex_ep.recordings import run as results

    torch.set_num_threads(1)
    net, defaults = network(rule, feedback)
    config = TrainConfig(epochs=epochs, batch_size=defaults["batch_size"], seed=seed,
                         estimator=Estimator(defaults["estimator"], defaults["beta"]),
                         relaxation=Relaxation(defaults["free_steps"],
                                               defaults["nudged_steps"]),
                         engine=engine, plasticity=rule)
    digits = data.load(train_size=train_size, test_size=test_size, seed=0)
    idx = data.stratified_indices(digits.y_train, gradient_batch, 0)
    x, d = digits.x_train[idx], data.one_hot(digits.y_train[idx], net.output.size)
    with tempfile.TemporaryDirectory() as tmp:
        # one recorded probe digit per epoch keeps the weights of every epoch
        history, _, _ = train(net, digits, config, out=Path(tmp), record=1,
                              record_epochs=range(0, epochs + 1), progress=False)
        run = results.open_run(tmp, chunks=False)  # no nested dask inside a dask worker
        # the gradient cosines (implicit differentiation per epoch) for seed 0 only
        history = alignment_history(net, history, run.weight_history, x, d, PARAMS,
                                    cosines=seed == 0)
    history.attrs = {"engine": engine, "plasticity": rule, "feedback": feedback}
    return history


def continual_cosine(epochs_before: int, lrs, nudged_steps: int, train_size=None,
                     batch: int = 20) -> xr.Dataset:
    """The continual check (:mod:`cortex_ep.gradients.continual`) after training."""
    from cortex_ep import Relaxation, data
    from cortex_ep.gradients.continual import continual_gradcheck
    from cortex_ep.learning.loop import TrainConfig, train
    from cortex_ep.model import energy
    from cortex_ep.model.estimators import Estimator

    net, defaults = network("continual", "tied")
    digits = data.load(train_size=train_size, seed=0)
    W, b = energy.init_params(net, 0)
    if epochs_before:
        config = TrainConfig(epochs=epochs_before, batch_size=defaults["batch_size"],
                             estimator=Estimator(defaults["estimator"], defaults["beta"]),
                             relaxation=Relaxation(defaults["free_steps"],
                                                   defaults["nudged_steps"]),
                             engine="torch", dtype="float64", plasticity="continual")
        _, W, b = train(net, digits, config, progress=False)
    idx = data.stratified_indices(digits.y_train, batch, 0)
    x, d = digits.x_train[idx], data.one_hot(digits.y_train[idx], net.output.size)
    parts = []
    for estimator, beta in COSINE_CHECKS:
        ds = continual_gradcheck(net, x, d, W, b, lrs, [beta], estimator, nudged_steps)
        parts.append(ds.squeeze("beta", drop=True).expand_dims(
            check=[f"{estimator} β={beta:g}"]).assign_coords(beta=("check", [beta])))
    return xr.concat(parts, "check", combine_attrs="drop_conflicts").assign_attrs(
        epochs_before=epochs_before, batch=batch)


# ------------------------------------------------------------------- output
def plot(ds: xr.Dataset, cos: xr.Dataset, out: Path) -> list:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figures = []
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.5), sharey=True)
    for ax, rule in zip(axes, RULES):
        for fb in FEEDBACK:
            acc = 100 * ds.test_accuracy.sel(rule=rule, feedback=fb).sel(epoch=slice(1, None))
            mean, sd = acc.mean("seed"), acc.std("seed")
            line, = ax.plot(acc.epoch, mean, marker="o", ms=3, label=f"{fb} (twin)")
            ax.fill_between(acc.epoch, mean - sd, mean + sd, alpha=0.2, color=line.get_color())
            if "brian_test_accuracy" in ds and rule == "continual" and \
                    fb in ds.brian_feedback.values:
                brian = 100 * ds.brian_test_accuracy.sel(brian_feedback=fb)
                ax.plot(brian.epoch, brian, ls="--", marker="x", color=line.get_color(),
                        label=f"{fb} (Brian2, seed 0)")
        ax.set_title(f"{rule} rule")
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    axes[0].set_ylabel("held-out accuracy (%)")
    fig.suptitle(f"784-500-10 on the embedded split, mean ± sd over {ds.sizes['seed']} seeds")
    figures.append(io.write_figure(fig, out / "local_learning_accuracy.png"))

    n_checks = cos.sizes["check"]
    fig, axes = plt.subplots(1, n_checks + 1, figsize=(4.6 * (n_checks + 1), 4.2),
                             sharey=True)
    for check in cos.check.values:
        # the learning rate relative to β: where the collapse happens for every β
        cell = cos.sel(check=check)
        axes[-1].semilogx(cell.lr / float(cell.beta), cell.cosine.min("param"), marker="o",
                          label=check)
    axes[-1].set_xlabel("η / β")
    axes[-1].set_title("worst parameter against η / β")
    axes[-1].grid(alpha=0.3)
    axes[-1].legend(fontsize=8)
    for ax, check in zip(axes[:-1], cos.check.values):
        cell = cos.sel(check=check)
        for param in ("W_x_h1", "W_h1_y"):
            line, = ax.semilogx(cell.lr, cell.cosine.sel(param=param), marker="o",
                                label=param)
            ax.axhline(float(cell.limit_cosine.sel(param=param)), ls=":",
                       color=line.get_color(), lw=1)
        ax.set_title(f"{check} (dotted: lr → 0 limit)")
        ax.set_xlabel("learning rate η (every parameter)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    axes[0].set_ylabel("cosine to the exact gradient")
    fig.suptitle(f"total continual update over one batch of {cos.attrs['batch']} after "
                 f"{cos.attrs['epochs_before']} epoch(s), {cos.attrs['nudged_steps']} "
                 "nudged steps per sample")
    figures.append(io.write_figure(fig, out / "continual_cosine.png"))

    fig, axes = plt.subplots(1, 2, figsize=(13, 4.5))
    for rule in RULES:
        for fb in FEEDBACK[1:]:
            angle = ds.alignment_angle.sel(rule=rule, feedback=fb)
            axes[0].plot(ds.epoch, angle.mean("seed"), marker="o", ms=3, label=f"{rule}, {fb}")
        for fb in FEEDBACK:
            cosine = ds.gradient_cosine.sel(rule=rule, feedback=fb, seed=0, param="W_x_h1")
            axes[1].plot(ds.epoch, cosine, marker="o", ms=3, label=f"{rule}, {fb}")
    axes[0].set_ylabel("angle between W_h1_y and B_h1_y (degrees)")
    axes[1].set_ylabel(f"cosine of EP (β={GRADIENT_BETA}) to the gradient, W_x_h1")
    for ax in axes:
        ax.set_xlabel("epoch (0: initial weights)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    figures.append(io.write_figure(fig, out / "feedback_alignment.png"))
    return figures


def summarize(ds: xr.Dataset, cos: xr.Dataset) -> list[str]:
    last = ds.isel(epoch=-1)
    lines = [f"held-out accuracy after {int(last.epoch)} epochs (mean ± sd over "
             f"{ds.sizes['seed']} seeds), twin; seconds per epoch",
             f"{'rule':<11}{'feedback':<20}{'accuracy':>16}{'s/epoch':>9}"]
    for rule in RULES:
        for fb in FEEDBACK:
            acc = 100 * last.test_accuracy.sel(rule=rule, feedback=fb)
            sec = ds.seconds.sel(rule=rule, feedback=fb).mean()
            lines.append(f"{rule:<11}{fb:<20}{float(acc.mean()):>9.2f} ± {float(acc.std()):.2f}"
                         f"{float(sec):>9.1f}")
    if "brian_test_accuracy" in ds:
        for fb in ds.brian_feedback.values:
            acc = 100 * float(ds.brian_test_accuracy.sel(brian_feedback=fb).isel(epoch=-1))
            sec = float(ds.brian_seconds.sel(brian_feedback=fb).mean())
            lines.append(f"{'continual':<11}{fb + ' (Brian2)':<20}{acc:>9.2f} (seed 0)"
                         f"{sec:>6.1f}")
    lines.append("continual update against the exact gradient (worst parameter; "
                 f"after {cos.attrs['epochs_before']} epoch(s)):")
    lines.append(f"{'check':<22}" + "".join(f"{lr:>10.0e}" for lr in cos.lr.values)
                 + f"{'lr → 0':>10}")
    for check in cos.check.values:
        cell = cos.sel(check=check)
        lines.append(f"{check:<22}" + "".join(f"{float(v):>10.5f}"
                                               for v in cell.cosine.min("param").values)
                     + f"{float(cell.limit_cosine.min()):>10.5f}")
    for check in cos.check.values:
        cell = cos.sel(check=check)
        limit = float(cell.limit_cosine.min())
        close = cell.lr.values[(cell.cosine.min("param") >= limit - 1e-3).values]
        beta = float(cell.beta)
        lines.append(f"{check}: within 0.001 of the lr → 0 cosine ({limit:.5f}) up to "
                     + (f"lr = {close.max():g} (lr/β = {close.max() / beta:g})" if len(close)
                        else "no learning rate of the grid"))
    lines.append("angle between W and B (degrees, mean over seeds), epochs "
                 + ", ".join(str(int(e)) for e in ds.epoch.values))
    for rule in RULES:
        for fb in FEEDBACK[1:]:
            angle = ds.alignment_angle.sel(rule=rule, feedback=fb).mean("seed")
            lines.append(f"  {rule:<10}{fb:<20}" + " ".join(f"{float(a):5.1f}"
                                                           for a in angle.values))
    lines.append(f"cosine of EP (one-sided β={GRADIENT_BETA}) to the exact gradient, seed 0, "
                 "W_x_h1 / W_h1_y, at the first and the last epoch")
    for rule in RULES:
        for fb in FEEDBACK:
            c = ds.gradient_cosine.sel(rule=rule, feedback=fb, seed=0)
            lines.append(f"  {rule:<10}{fb:<20}"
                         + "  ".join(f"{float(c.isel(epoch=e).sel(param=p)):.4f}"
                                     for e in (0, -1) for p in ("W_x_h1", "W_h1_y")))
    return lines


def brian_cells(grid_feedback, fixed: dict, out: Path) -> xr.Dataset:
    """Brian2 runs (seed 0, continual rule) in this process, one file per finished cell
    (Brian2 is not run inside dask workers)."""
    parts = []
    for fb in grid_feedback:
        path = out / "cells" / f"brian-continual-{fb}.nc"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            io.write_dataset(local_cell("continual", fb, 0, engine="brian", **fixed), path)
        parts.append(io.read_dataset(path)[["test_accuracy", "seconds"]])
    ds = xr.concat(parts, "brian_feedback").assign_coords(brian_feedback=list(grid_feedback))
    return ds.rename(test_accuracy="brian_test_accuracy", seconds="brian_seconds")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sweeps.add_sweep_arguments(parser, "runs/local_learning", seeds=3, epochs=10)
    parser.add_argument("--no-brian", action="store_true",
                        help="skip the Brian2 runs (they build C++ code first)")
    args = parser.parse_args(argv)
    out = io.check_writable_dir(args.out)
    start = time.perf_counter()
    if args.quick:
        seeds, fixed = [0], dict(epochs=2, train_size=200, test_size=100, gradient_batch=2)
        lrs, nudged, cos_kw = np.logspace(-6, 0, 3), 40, dict(train_size=200, batch=2)
    else:
        seeds, fixed = list(range(args.seeds)), dict(epochs=args.epochs)
        lrs, nudged, cos_kw = np.logspace(-6, 0, 7), 200, {}
    grid = {"rule": list(RULES), "feedback": list(FEEDBACK), "seed": seeds}
    out.mkdir(parents=True, exist_ok=True)
    ds = sweeps.run_sweep(grid, local_cell, out / "cells", args.scheduler, args.workers,
                          progress=not args.no_progress, fixed=fixed)
    if not (args.quick or args.no_brian):
        ds = ds.merge(brian_cells(("tied", "separate-random"), fixed, out))
    ds.attrs.update(quick=int(args.quick))
    io.write_dataset(ds, out / "local_learning.nc")
    cos_path = out / "continual_cosine.nc"
    if cos_path.exists():
        cos = io.read_dataset(cos_path)
    else:
        cos = continual_cosine(1, lrs, nudged, **cos_kw)
        io.write_dataset(cos, cos_path)
    figures = plot(ds, cos, out)
    print("\n".join(summarize(ds, cos)))
    print(f"data: {out / 'local_learning.nc'}, {cos_path}; figures: "
          f"{', '.join(str(f) for f in figures)}; {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
