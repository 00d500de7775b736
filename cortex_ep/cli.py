"""The ``cortex-ep`` command.

``cortex-ep train`` trains a network by EP (Brian2 engine by default) on the
embedded MNIST subset or full MNIST and writes ``history.nc``, ``weights.nc``
and optionally ``traces.nc`` to ``--out``.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

from . import __version__


class UsageError(Exception):
    """Bad input found before any work: printed and the command exits 2."""


def _parser() -> argparse.ArgumentParser:
    from .brian.engine import DEFAULT_TARGET, TARGETS
    from .energy import ACTIVATIONS
    from .estimators import ESTIMATORS
    from .train import ENGINES

    parser = argparse.ArgumentParser(prog="cortex-ep", description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", action="version", version=f"cortex-ep {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train a network by Equilibrium Propagation",
                       description="Train by EP; defaults come from the model's TRAINING.",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    t.add_argument("--model", default="two_layer",
                   help="bundled model name (two_layer, three_layer, 784-500-10, ...) or a "
                        ".py file defining network()")
    t.add_argument("--data", default=None,
                   help="directory of MNIST IDX files, or torchvision:DIR; default: the "
                        "embedded 5,000 digits")
    t.add_argument("--train-size", type=int, default=None,
                   help="stratified training subset size (default: all)")
    t.add_argument("--test-size", type=int, default=None,
                   help="stratified held-out subset size (default: all)")
    t.add_argument("--epochs", type=int, default=None)
    t.add_argument("--batch-size", type=int, default=None)
    t.add_argument("--beta", type=float, default=None, help="nudging strength β (≠ 0)")
    t.add_argument("--estimator", choices=ESTIMATORS, default=None)
    t.add_argument("--lr", type=float, nargs="+", default=None,
                   help="learning rates: one for all projections or one per projection")
    t.add_argument("--free-steps", type=int, default=None)
    t.add_argument("--nudged-steps", type=int, default=None)
    t.add_argument("--noise", type=float, default=0.0, help="neuronal noise σ")
    t.add_argument("--activation", choices=tuple(ACTIVATIONS), default="hard_sigmoid")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--engine", choices=ENGINES, default="brian")
    t.add_argument("--target", choices=TARGETS, default=DEFAULT_TARGET,
                   help="Brian2 code-generation target")
    t.add_argument("--out", type=Path, default=None,
                   help="output directory (default: runs/<model>-<time>)")
    t.add_argument("--record", type=int, default=0, metavar="N",
                   help="write free/nudged traces of N held-out digits to traces.nc")
    t.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return parser


def _prepare_train(args):
    """Validate every argument and load the data; creates nothing."""
    from . import data, io, models
    from .estimators import Estimator
    from .reference import Relaxation
    from .spec import with_learning_rates
    from .train import TrainConfig

    try:
        model = models.load(args.model)
        defaults = dict(getattr(model, "TRAINING", {}))
        net = model.network()
        if args.lr is not None:
            net = with_learning_rates(net, args.lr)

        def pick(name, fallback):
            value = getattr(args, name)
            return value if value is not None else defaults.get(name, fallback)

        estimator = Estimator(pick("estimator", "random-sign"), pick("beta", 0.5))
        relaxation = Relaxation(pick("free_steps", 20), pick("nudged_steps", 4), args.noise,
                                args.activation)
        config = TrainConfig(epochs=pick("epochs", 10), batch_size=pick("batch_size", 20),
                             seed=args.seed, estimator=estimator, relaxation=relaxation,
                             engine=args.engine, target=args.target)
        for option in ("train_size", "test_size"):
            value = getattr(args, option)
            if value is not None and value < 1:
                raise UsageError(f"--{option.replace('_', '-')} = {value}: a subset size "
                                 "must be a positive integer")
        if args.record < 0:
            raise UsageError(f"--record {args.record}: give a number of held-out digits >= 0")
        out = args.out or Path("runs") / f"{net.name}-{time.strftime('%Y%m%d-%H%M%S')}"
        out = io.check_writable_dir(out)
        digits = data.load(args.data, args.train_size, args.test_size, seed=args.seed)
        if args.record > len(digits.y_test):
            raise UsageError(f"--record {args.record} exceeds the {len(digits.y_test)} "
                             "held-out digits")
        if digits.x_train.shape[1] != net.input.size:
            raise UsageError(f"the data has {digits.x_train.shape[1]} pixels per image, "
                             f"but model {args.model!r} expects {net.input.size}")
    except UsageError:
        raise
    except ValueError as err:  # SpecError and DataError are ValueErrors
        raise UsageError(str(err)) from None
    return model, net, config, digits, out


def cmd_train(args) -> int:
    from .train import train

    model, net, config, digits, out = _prepare_train(args)
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    try:
        history, _, _ = train(net, digits, config, out=out, record=args.record,
                              progress=not args.no_progress,
                              extra_attrs={"model": args.model})
    except BaseException:
        if created and not any(out.iterdir()):
            shutil.rmtree(out, ignore_errors=True)
        raise
    last = history.isel(epoch=-1)
    est = config.estimator
    print(f"{net.name} {net.describe()} | EP {est.name} β={est.beta:g} | {config.engine}"
          f"{'/' + config.target if config.engine == 'brian' else ''} | "
          f"{config.epochs} epochs in {float(history.seconds.sum()):.1f} s | "
          f"held-out accuracy {100 * float(last.test_accuracy):.1f}% "
          f"({len(digits.y_test)} digits) | train {100 * float(last.train_accuracy):.1f}% | "
          f"out: {out}")
    return 0


def main(argv=None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return {"train": cmd_train}[args.command](args)
    except UsageError as err:
        parser.exit(2, f"cortex-ep: error: {err}\n")


if __name__ == "__main__":
    sys.exit(main())
