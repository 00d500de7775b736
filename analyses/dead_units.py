"""Dead output units at small β: how often they happen, and that the small-β rates end them.

At β = 0.1 an output unit whose drive falls below −β for every digit stays at
0 in both phases; its EP update is zero and its class is lost for good (the
health check after every epoch now says so, naming unit and class).  Two
sweeps on the embedded split (4,000 train / 1,000 held-out), torch twin:

- **small β**: the settings of the public Laborieux-Axel MNIST script — β =
  0.1, 30 free / 10 nudged steps, batches of 50, 10 epochs — with the
  symmetric and one-sided estimators, seeds 0–4, at the validated rates
  (0.4 / 0.05, "before") and at the model's small-β rates (``SMALL_BETA_LEARNING_RATES``,
  which ``cortex-ep train`` takes when ``|β| <= SMALL_BETA`` and ``--lr`` is
  left out: "after");
- **validated defaults**: every bundled model with its own ``TRAINING``
  settings and rates, seeds 0–4.

For each run: held-out accuracy per epoch, the output units dead at the end
(pinned at 0 or 1 for at least 99 % of the held-out digits, and out of the
nudge's reach — :func:`cortex_ep.learning.health.unmovable`), the classes
never predicted, and the largest fraction of a hidden population that never
leaves 0 on the held-out digits.

Usage::

    python analyses/dead_units.py [--quick] [--seeds 5] [--out runs/dead_units]
    python analyses/dead_units.py --runs runs/full/*   # dead units of recorded runs
"""

from __future__ import annotations

import argparse

import numpy as np
import xarray as xr

from cortex_ep import io, sweeps

#: the public Laborieux-Axel MNIST settings that the issue tried
SMALL_BETA = {"beta": 0.1, "free_steps": 30, "nudged_steps": 10, "batch_size": 50}
RATES = {"validated rates": "LEARNING_RATES", "small-β rates": "SMALL_BETA_LEARNING_RATES"}
MODELS = ("two_layer", "three_layer", "cortical_columns")


def dead_units_cell(setting: str, estimator: str, seed: int, *, model: str = "two_layer",
                    epochs: int = 10, train_size: int | None = None,
                    test_size: int | None = None) -> xr.Dataset:
    """Train one run and return its history with the dead units at its end.

    ``setting`` is a key of :data:`RATES` (the small-β settings at those rates)
    or ``"defaults"`` (the model's own ``TRAINING``; ``estimator`` is then the
    model's, and the grid's value only labels the cell).
    """
    import torch

    from cortex_ep import data, models
    from cortex_ep.engines import reference
    from cortex_ep.learning import health
    from cortex_ep.learning.loop import TrainConfig, train
    from cortex_ep.model.estimators import Estimator
    from cortex_ep.model.relaxation import Relaxation
    from cortex_ep.model.spec import with_learning_rates

    torch.set_num_threads(1)
    module = models.load(model)
    net = models.build_network(module)
    settings = dict(module.TRAINING)
    if setting != "defaults":
        settings.update(SMALL_BETA, estimator=estimator)
        net = with_learning_rates(net, getattr(module, RATES[setting]))
    relaxation = Relaxation(settings["free_steps"], settings["nudged_steps"])
    config = TrainConfig(epochs=epochs, batch_size=settings["batch_size"], seed=seed,
                         estimator=Estimator(settings["estimator"], settings["beta"]),
                         relaxation=relaxation, engine="torch")
    digits = data.load(train_size=train_size, test_size=test_size, seed=0)
    history, W, b = train(net, digits, config, progress=False, on_divergence="warn")
    states = reference.relax(net, reference.zero_state(net, digits.x_test), W, b,
                             relaxation.free_steps, relaxation=relaxation)
    y = net.output.name
    dead = 0
    for bound, units in enumerate(health.dead_outputs(states[y])):
        dead += len(health.unmovable(net, W, b, states, units, bound, settings["beta"],
                                     relaxation.activation))
    recall = [np.mean(states[y][digits.y_test == k].argmax(axis=1) == k)
              for k in range(net.output.size)]
    silent_hidden = max(float(np.mean((states[p.name] <= 0).all(axis=0)))
                        for p in net.dynamic if p.role == "hidden")
    return history.assign(
        dead_outputs=((), dead, {"long_name": "output units dead at the end",
                                 "units": "1"}),
        lost_classes=((), int(np.sum(np.array(recall) == 0)),
                      {"long_name": "classes never predicted on the held-out digits",
                       "units": "1"}),
        silent_hidden=((), silent_hidden, {"long_name": "largest fraction of a hidden "
                                           "population at 0 for every held-out digit",
                                           "units": "1"}))


def dead_in_run(run) -> tuple[int, int, float]:
    """(dead output units, output units, final held-out accuracy) of a recorded run
    directory, from its ``weights.nc`` and its own data and settings."""
    import json

    from cortex_ep import data, models
    from cortex_ep.engines import reference
    from cortex_ep.learning import health
    from cortex_ep.learning.weights import params_from_weights
    from cortex_ep.model.relaxation import Relaxation
    from cortex_ep.model.spec import with_learning_rates

    history = io.read_dataset(f"{run}/history.nc")
    a = history.attrs
    options = json.loads(a["cli_args"])
    net = with_learning_rates(models.build_network(models.load(a["model"])),
                              list(np.atleast_1d(a["learning_rates"])))
    W, b = params_from_weights(net, io.read_dataset(f"{run}/weights.nc"))
    digits = data.load(options.get("data"), options.get("train_size"),
                       options.get("test_size"), seed=int(a["seed"]))
    relaxation = Relaxation(int(a["free_steps"]), int(a["nudged_steps"]), 0.0,
                            str(a["activation"]))
    states = reference.relax(net, reference.zero_state(net, digits.x_test), W, b,
                             relaxation.free_steps, relaxation=relaxation)
    dead = sum(len(health.unmovable(net, W, b, states, units, bound, float(a["beta"]),
                                    relaxation.activation))
               for bound, units in enumerate(health.dead_outputs(states[net.output.name])))
    return dead, net.output.size, float(history.test_accuracy[-1])


def summarize_small_beta(ds: xr.Dataset) -> list[str]:
    final = 100 * ds.test_accuracy.isel(epoch=-1)
    lines = [f"small β ({', '.join(f'{k} {v:g}' for k, v in SMALL_BETA.items())}), "
             f"{ds.sizes['epoch']} epochs: final held-out accuracy per seed "
             f"(dead output units / classes never predicted)"]
    for setting in ds.setting.values:
        for est in ds.estimator.values:
            acc = final.sel(setting=setting, estimator=est)
            dead = ds.dead_outputs.sel(setting=setting, estimator=est)
            lost = ds.lost_classes.sel(setting=setting, estimator=est)
            cells = "  ".join(f"{a:5.1f} ({int(d)}/{int(c)})"
                              for a, d, c in zip(acc.values, dead.values, lost.values))
            lines.append(f"  {setting:<16}{est:<11}{cells}   min {float(acc.min()):.1f}, "
                         f"mean {float(acc.mean()):.1f}%")
    return lines


def summarize_defaults(ds: xr.Dataset) -> list[str]:
    final = 100 * ds.test_accuracy.isel(epoch=-1)
    lines = ["validated defaults: final held-out accuracy, dead output units (of all "
             "seeds' units), silent hidden fraction (largest)"]
    for model in ds.model.values:
        sel = dict(model=model, setting="defaults", estimator="model's")
        dead = ds.dead_outputs.sel(**sel)
        lines.append(f"  {model:<18}{float(final.sel(**sel).mean()):5.1f} ± "
                     f"{float(final.sel(**sel).std()):.1f}%   dead outputs "
                     f"{int(dead.sum())} of {10 * dead.size}, classes never predicted "
                     f"{int(ds.lost_classes.sel(**sel).sum())}   silent hidden "
                     f"{100 * float(ds.silent_hidden.sel(**sel).max()):.1f}%")
    return lines


def plot_small_beta(ds: xr.Dataset, out):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, ds.sizes["estimator"], figsize=(11, 4), sharey=True)
    for ax, est in zip(np.atleast_1d(axes), ds.estimator.values):
        for setting, color in zip(ds.setting.values, ("tab:red", "tab:blue")):
            curves = 100 * ds.test_accuracy.sel(setting=setting, estimator=est)
            for i, seed in enumerate(ds.seed.values):
                ax.plot(ds.epoch, curves.sel(seed=seed), color=color, alpha=0.7, lw=1.2,
                        label=setting if i == 0 else None)
        ax.set_title(f"{est}, β = {SMALL_BETA['beta']:g}")
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    np.atleast_1d(axes)[0].set_ylabel("held-out accuracy (%)")
    np.atleast_1d(axes)[0].legend(fontsize=8)
    fig.suptitle("784-500-10, embedded split, one line per seed: dead output units "
                 "flatten the red curves")
    return io.write_figure(fig, out / "dead_units.png")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sweeps.add_sweep_arguments(parser, "runs/dead_units", seeds=5, epochs=10)
    parser.add_argument("--runs", nargs="+", default=None, metavar="RUN",
                        help="instead of the sweeps: count the dead output units at the end "
                             "of these recorded run directories (e.g. the full-MNIST runs)")
    args = parser.parse_args(argv)
    if args.runs:
        total = units = 0
        for run in args.runs:
            dead, size, accuracy = dead_in_run(run)
            total, units = total + dead, units + size
            print(f"{run}: {dead} of {size} output units dead, held-out/test accuracy "
                  f"{100 * accuracy:.2f}%")
        print(f"dead output units in all {len(args.runs)} runs: {total} of {units}")
        return
    out = io.check_writable_dir(args.out)
    seeds = [0, 1] if args.quick else list(range(args.seeds))
    fixed = (dict(epochs=2, train_size=400, test_size=200) if args.quick
             else dict(epochs=args.epochs))
    options = dict(scheduler=args.scheduler, workers=args.workers,
                   progress=not args.no_progress, attrs={"quick": int(args.quick)})
    sweeps.run_analysis("dead_units_small_beta",
                        {"setting": list(RATES), "estimator": ["symmetric", "one-sided"],
                         "seed": seeds}, dead_units_cell, out, fixed, plot_small_beta,
                        summarize_small_beta, **options)
    sweeps.run_analysis("dead_units_defaults",
                        {"model": list(MODELS[:1] if args.quick else MODELS),
                         "setting": ["defaults"], "estimator": ["model's"], "seed": seeds},
                        dead_units_cell, out, fixed, lambda ds, out: [], summarize_defaults,
                        **options)


if __name__ == "__main__":
    main()
