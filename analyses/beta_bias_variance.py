"""How small must β be?  Bias and variance of the EP gradient estimate against β.

For the 784-500-10 network of ``models/two_layer.py``, at initialisation and
after training, with the hard sigmoid and with a smooth activation (the
logistic σ(4(s − ½))), without neuronal noise and at two noise levels σ, the
one-sided and the symmetric EP estimates are compared with the exact gradient
of C(s⁰) (implicit differentiation) for β from 1e-5 to 1 (every value
0.001 … 0.009 included).  Each seed is one minibatch of 20 training digits and,
with noise, 5 noise realisations; per layer:

    bias     ‖E[ĝ] − g‖ / ‖g‖
    variance E‖ĝ − E[ĝ]‖² / ‖g‖²
    MSE      bias² + variance

The cells (activation × state × σ × seed) run on dask.  Figures: bias, variance
and MSE against β on log–log axes with error bars (standard error over seeds),
the sweet-spot β (least MSE) of each noise level marked with a star and the
β where units start crossing the hard sigmoid's kinks marked with a dashed
line.  Printed: the fitted bias slopes for β ≤ 1e-3, the sweet spots and the
answer to "0.001 or 0.009?".

Noise-free phases relax to a tolerance in extended precision; noisy phases run
100 free and 50 nudged Euler steps.

Usage::

    python analyses/beta_bias_variance.py [--quick] [--out runs/beta_bias_variance]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import xarray as xr
from cortex_ep.models import load as load_model

from cortex_ep import Relaxation, data, io, sweeps
from cortex_ep.gradients.gradcheck import bias_variance, default_betas, loglog_slope
from cortex_ep.learning.loop import (
    TrainConfig,
    params_from_weights,
    train,
    weights_dataset,
)
from cortex_ep.model.estimators import Estimator

ACTIVATIONS = ("hard_sigmoid", "logistic")
STATES = ("init", "trained")
NOISE = (0.0, 0.001, 0.003)
ESTIMATORS = ("one-sided", "symmetric")


def cell(activation, state, noise, seed, *, weights_dir, betas, batch, repeats,
         noisy_steps, train_size):
    """Bias and variance for one activation, network state, noise level and minibatch."""
    import torch

    torch.set_num_threads(1)
    net = load_model("two_layer").network()
    weights = io.read_dataset(Path(weights_dir) / f"{activation}_{state}.nc")
    W, b = params_from_weights(net, weights)
    digits = data.load(train_size=train_size)
    idx = np.random.default_rng(1000 + seed).choice(len(digits.y_train), batch,
                                                    replace=False)
    x, d = digits.x_train[idx], data.one_hot(digits.y_train[idx], 10)
    return bias_variance(net, x, d, W, b, betas, ESTIMATORS, noise, repeats, seed,
                         activation, precision="longdouble" if noise == 0 else "float64",
                         noisy_steps=noisy_steps)


def prepare_weights(out: Path, quick: bool, epochs: int) -> Path:
    """Initial and trained (EP, torch twin) weights of each activation."""
    weights_dir = out / "weights"
    weights_dir.mkdir(parents=True, exist_ok=True)
    model = load_model("two_layer")
    net = model.network()
    digits = data.load(train_size=400 if quick else None, test_size=100 if quick else None)
    for activation in ACTIVATIONS:
        if (weights_dir / f"{activation}_trained.nc").is_file():
            continue
        config = TrainConfig(epochs=epochs, batch_size=20, engine="torch",
                             estimator=Estimator("random-sign", 0.5),
                             relaxation=Relaxation(20, 4, activation=activation))
        from cortex_ep.model import energy

        W0, b0 = energy.init_params(net, 0)
        io.write_dataset(weights_dataset(net, W0, b0), weights_dir / f"{activation}_init.nc")
        history, W, b = train(net, digits, config, progress=False)
        print(f"trained {activation}: held-out accuracy "
              f"{100 * float(history.test_accuracy[-1]):.1f}% after {epochs} epochs")
        io.write_dataset(weights_dataset(net, W, b), weights_dir / f"{activation}_trained.nc")
    return weights_dir


def summarize(ds: xr.Dataset) -> list[str]:
    """Headline numbers: bias slopes, sweet spots, the kink break-down, 0.001 vs 0.009."""
    lines = []
    mean = ds.mean("seed")
    weights = [p for p in ds.param.values if p.startswith("W_")]
    lines.append("fitted bias slopes over 1e-5 <= β <= 1e-3 (σ = 0, mean over seeds):")
    for act in ds.activation.values:
        for state in ds.state.values:
            for est in ds.estimator.values:
                slopes = [loglog_slope(ds.beta, mean.bias.sel(activation=act, state=state,
                                                              noise=0.0, estimator=est,
                                                              param=p))
                          for p in weights]
                lines.append(f"  {act:<13}{state:<8}{est:<10}" +
                             "  ".join(f"{p} {s:.3f}" for p, s in zip(weights, slopes)))
    lines.append("sweet spot β (least MSE, mean over seeds and weight layers):")
    mse = mean.mse.sel(param=weights).mean("param")
    for act in ds.activation.values:
        for state in ds.state.values:
            for noise in ds.noise.values:
                row = []
                for est in ds.estimator.values:
                    curve = mse.sel(activation=act, state=state, noise=noise, estimator=est)
                    k = int(np.argmin(curve.values))
                    best = float(ds.beta[k])
                    interior = 0 < k < len(ds.beta) - 1
                    row.append(f"{est} {best:.3g}{'' if interior else ' (edge)'}")
                lines.append(f"  {act:<13}{state:<8}σ={noise:<7g}" + ", ".join(row))
    lines.append("β where units start crossing a kink (σ = 0, any seed):")
    for act in ds.activation.values:
        for state in ds.state.values:
            crossing = ds.kink_crossings.sel(activation=act, state=state, noise=0.0).max(
                ["seed", "estimator"])
            first = ds.beta.values[crossing.values > 0]
            value = float(first.min()) if len(first) else float("nan")
            lines.append(f"  {act:<13}{state:<8}{value:.3g}")
    lines.append("0.001 or 0.009? bias at each (trained, σ = 0, mean over seeds, W layers):")
    for act in ds.activation.values:
        for est in ds.estimator.values:
            b = mean.bias.sel(activation=act, state="trained", noise=0.0, estimator=est,
                              param=weights).mean("param")
            at = {v: float(b.sel(beta=v, method="nearest")) for v in (0.001, 0.009)}
            lines.append(f"  {act:<13}{est:<10}β=0.001: {at[0.001]:.2e}   "
                         f"β=0.009: {at[0.009]:.2e}")
    return lines


def plot(ds: xr.Dataset, out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    weights = [p for p in ds.param.values if p.startswith("W_")]
    colors = {"one-sided": "tab:blue", "symmetric": "tab:orange"}
    styles = dict(zip(ds.noise.values, ["-", "--", ":"]))
    n_seeds = ds.sizes["seed"]
    for act in ds.activation.values:
        fig, axes = plt.subplots(3, 2 * len(weights), figsize=(4 * 2 * len(weights), 10),
                                 sharex=True)
        for col, (state, param) in enumerate((s, p) for s in ds.state.values
                                             for p in weights):
            sub = ds.sel(activation=act, state=state, param=param)
            kinks = sub.kink_crossings.sel(noise=0.0).max(["seed", "estimator"])
            first = ds.beta.values[kinks.values > 0]
            for row, var in enumerate(("bias", "variance", "mse")):
                ax = axes[row, col]
                for est in ds.estimator.values:
                    for noise in ds.noise.values:
                        if var == "variance" and noise == 0:
                            continue
                        curve = sub[var].sel(estimator=est, noise=noise)
                        # a bias estimate of 0 (noise-dominated) has no place on log axes
                        m = curve.mean("seed").where(lambda v: v > 0)
                        err = curve.std("seed") / np.sqrt(n_seeds)
                        ax.errorbar(ds.beta, m, yerr=err, color=colors[est],
                                    ls=styles[noise], lw=1.2, capsize=2,
                                    label=f"{est}, σ={noise:g}")
                        if var == "mse":
                            k = int(np.nanargmin(m.values))
                            ax.plot(ds.beta[k], m[k], marker="*", ms=12, color=colors[est],
                                    mec="k")
                if len(first):
                    ax.axvline(first.min(), color="grey", ls="--", lw=1)
                ax.set_xscale("log")
                ax.set_yscale("log")
                if row == 0:
                    ax.set_title(f"{state}, {param}")
                if col == 0:
                    ax.set_ylabel({"bias": "bias ‖E[ĝ]−g‖/‖g‖",
                                   "variance": "variance E‖ĝ−E[ĝ]‖²/‖g‖²",
                                   "mse": "MSE = bias² + variance"}[var])
                if row == 2:
                    ax.set_xlabel("β")
        axes[0, 0].legend(fontsize=7)
        fig.suptitle(f"EP gradient estimate against the exact gradient, 784-500-10, "
                     f"{act}; ★ least MSE, dashed: first unit crossing a kink "
                     f"(σ = 0); error bars: s.e.m. over {n_seeds} minibatches")
        paths.append(io.write_figure(fig, out / f"beta_bias_variance_{act}.png"))
    return paths


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sweeps.add_sweep_arguments(parser, "runs/beta_bias_variance", seeds=10)
    parser.add_argument("--repeats", type=int, default=5,
                        help="noise realisations per minibatch")
    args = parser.parse_args(argv)
    out = io.check_writable_dir(args.out)
    if args.quick:
        betas = np.array([1e-4, 1e-3, 0.003, 0.009, 0.1, 1.0])
        grid = {"activation": list(ACTIVATIONS), "state": list(STATES),
                "noise": [0.0, 0.003], "seed": [0, 1]}
        fixed = dict(batch=5, repeats=2, noisy_steps=(40, 20), train_size=400)
    else:
        betas = default_betas()
        grid = {"activation": list(ACTIVATIONS), "state": list(STATES), "noise": list(NOISE),
                "seed": list(range(args.seeds))}
        fixed = dict(batch=20, repeats=args.repeats, noisy_steps=(100, 50), train_size=None)
    out.mkdir(parents=True, exist_ok=True)
    weights_dir = prepare_weights(out, args.quick, epochs=1 if args.quick else 10)
    sweeps.run_analysis("beta_bias_variance", grid, cell, out,
                        {**fixed, "weights_dir": str(weights_dir), "betas": betas}, plot,
                        summarize, scheduler=args.scheduler, workers=args.workers,
                        progress=not args.no_progress,
                        attrs={"quick": int(args.quick), "batch": fixed["batch"],
                               "repeats": fixed["repeats"]})

if __name__ == "__main__":
    main()
