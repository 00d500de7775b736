"""``cortex-ep train``: train a network by EP (or a baseline) and keep its run.

Writes ``history.nc``, ``weights.nc``, ``checkpoint.nc`` and, with
``--record``, ``traces/`` and ``weights/`` per recorded epoch to ``--out``;
``--resume DIR`` continues a run with the settings it was started with.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

from .messages import HelpFormatter, UsageError, interrupted, seed


def add_train_parser(sub) -> argparse.ArgumentParser:
    """Register ``train`` on the ``cortex-ep`` subcommand set ``sub``; returns its parser."""
    from ..engines.brian.targets import DEFAULT_TARGET, TARGETS
    from ..engines.registry import ENGINES
    from ..engines.twin.backprop_options import BP_ACTIVATIONS, BP_LOSSES
    from ..learning.schedule import SCHEDULES
    from ..model.energy import ACTIVATIONS
    from ..model.estimators import ESTIMATORS
    from ..model.neurons import NEURON_MODELS, integrate_and_fire_only
    from ..model.neurons import OPTIONS as SPIKING_OPTIONS
    from ..model.plasticity import RULES as PLASTICITY_RULES
    from ..model.spec import FEEDBACK_INITS, FEEDBACK_LEARNING, FEEDBACK_MODES

    t = sub.add_parser("train", help="train a network by Equilibrium Propagation",
                       description="Train by EP; defaults come from the model's TRAINING.",
                       formatter_class=HelpFormatter)
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
    t.add_argument("--validation", type=int, default=None, metavar="N",
                   help="evaluate on N digits carved from the training set instead of the "
                        "held-out set (for choosing settings)")
    t.add_argument("--validation-split", choices=("stratified", "last"), default="stratified",
                   help="with --validation: a stratified draw, or the last N training "
                        "digits (full MNIST's customary split: --validation 10000)")
    t.add_argument("--epochs", type=int, default=None,
                   help="passes over the training digits; unset: the model's TRAINING value")
    t.add_argument("--batch-size", type=int, default=None,
                   help="digits per weight update; unset: the model's TRAINING value")
    t.add_argument("--beta", type=float, default=None,
                   help="nudging strength β (≠ 0); unset: the model's TRAINING value")
    t.add_argument("--estimator", choices=ESTIMATORS, default=None,
                   help="how the phases are compared; unset: the model's TRAINING value")
    t.add_argument("--lr", type=float, nargs="+", default=None,
                   help="learning rates: one for all projections or one per projection; "
                        "unset: the model's validated rates")
    t.add_argument("--lr-schedule", choices=SCHEDULES, default=None,
                   help="rates over the epochs: constant, or cosine annealing from the "
                        "full rates to near 0 in the last epoch; unset: constant, or the "
                        "model's schedule for the spiking --neurons (SPIKING_TRAINING, "
                        "IF_TRAINING)")
    t.add_argument("--free-steps", type=int, default=None,
                   help="Euler steps of the free phase; unset: the model's TRAINING value")
    t.add_argument("--nudged-steps", type=int, default=None,
                   help="Euler steps of each nudged phase; unset: the model's TRAINING value")
    t.add_argument("--noise", type=float, default=0.0, help="neuronal noise σ")
    t.add_argument("--activation", choices=tuple(ACTIVATIONS), default="hard_sigmoid",
                   help="ρ, the rate a unit's state gives its synapses")
    t.add_argument("--plasticity", choices=PLASTICITY_RULES, default=None,
                   help="phase: synapses change once per sample from the ends of two "
                        "phases; continual: at every nudged step from the step's change of "
                        "pre x post rates (local in time); unset: phase, or the model's "
                        "rule for the spiking --neurons (SPIKING_TRAINING, IF_TRAINING)")
    t.add_argument("--feedback", choices=FEEDBACK_MODES, default=None,
                   help="tied: top-down currents through the forward weights; separate: "
                        "through their own learned matrices (default: the model's)")
    t.add_argument("--feedback-init", choices=FEEDBACK_INITS, default="transpose",
                   help="with --feedback separate: start the feedback matrices equal to "
                        "the forward weights or as their own random draw")
    t.add_argument("--feedback-learning", choices=FEEDBACK_LEARNING, default=None,
                   help="with --feedback separate: the feedback matrices learn by the "
                        "forward weights' local rule (shared, the default), never change "
                        "(fixed: feedback alignment), or learn by it while both decay by "
                        "1 - lr*lambda per batch (kolen-pollack), so that they come to match")
    t.add_argument("--feedback-decay", type=float, default=None, metavar="LAMBDA",
                   help="with --feedback-learning kolen-pollack: the decay lambda (per unit "
                        "learning rate, per batch); unset: the validated default")
    t.add_argument("--neurons", choices=NEURON_MODELS, default="rate",
                   help="rate: units pass rho(s) to their synapses; spiking: Poisson spikes "
                        "at r_max rho(s); if: integrate-and-fire units with reset by "
                        "subtraction, whose spike count tracks the rate integral within one "
                        "spike; spikes reach synapses through exponential currents (Brian2 "
                        "engine; phases in ms)")
    for field, (flag, unit, kind, what) in SPIKING_OPTIONS.items():
        which = ("--neurons if" if integrate_and_fire_only(field)
                 else "--neurons spiking or if")
        shape = {"choices": unit} if isinstance(unit, tuple) else {"metavar": unit}
        t.add_argument(flag, dest=field, type=kind, default=None, **shape,
                       help=f"with {which}: {what}; unset: the model's value")
    t.add_argument("--shift", type=int, default=None, metavar="PIXELS",
                   help="translate each training digit by up to PIXELS pixels in each "
                        "direction, a new draw every epoch (held-out digits stay put); "
                        "unset: the model's, else 0")
    t.add_argument("--seed", type=seed, default=0,
                   help="initial weights, sample order, β signs and noise")
    t.add_argument("--engine", choices=ENGINES, default="brian",
                   help="brian / torch: EP; numpy: EP reference; rbp: the same network "
                        "trained with the exact gradient; backprop: feedforward baseline")
    t.add_argument("--target", choices=TARGETS, default=DEFAULT_TARGET,
                   help="Brian2 code-generation target")
    t.add_argument("--device", default="cpu", help="torch device (cpu, cuda, cuda:N)")
    t.add_argument("--dtype", choices=("float32", "float64"), default="float32",
                   help="torch float type")
    t.add_argument("--bp-activation", choices=BP_ACTIVATIONS, default="logistic",
                   help="hidden activation of --engine backprop")
    t.add_argument("--bp-loss", choices=BP_LOSSES, default="cross_entropy",
                   help="loss of --engine backprop")
    t.add_argument("--out", type=Path, default=None,
                   help="output directory (default: runs/<model>-<time>)")
    t.add_argument("--record", type=int, default=0, metavar="N",
                   help="record free/nudged traces of a fixed probe set of N held-out digits "
                        "(balanced over classes) into traces/epoch_NNNN.nc")
    t.add_argument("--record-epochs", type=int, nargs="+", default=None, metavar="E",
                   help="epochs after which to record (0 = before learning); default: the "
                        "last")
    t.add_argument("--resume", type=Path, default=None, metavar="DIR",
                   help="continue the run in DIR from its last checkpoint, with its "
                        "settings (--epochs may be raised)")
    t.add_argument("--on-divergence", choices=("stop", "warn"), default="stop",
                   help="when weights turn NaN/explode or the free phase stops settling: "
                        "stop (keeping the last good checkpoint) or warn and go on")
    t.add_argument("--settle-tol", type=float, default=None,
                   help="tolerance on max|ds/dt|·τ at the end of the free phase "
                        "(default: 0.1)")
    t.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return t


#: options not kept for --resume: where the run is, and how it shows progress
NOT_STORED = ("command", "resume", "out", "no_progress")


def _explicit_options(argv) -> set:
    """Destinations of the options given on the command line (not defaults)."""
    parser = argparse.ArgumentParser(prog="cortex-ep")
    train_parser = add_train_parser(parser.add_subparsers(dest="command", required=True))
    for action in train_parser._actions:
        action.default = argparse.SUPPRESS
    return set(vars(parser.parse_args(argv))) - {"command"}


def restore_resumed_options(args, argv) -> None:
    """Fill the options not given on the command line from the run being resumed."""
    import json

    from ..io import DirectoryInUse
    from ..learning import checkpoint
    from ..learning.loop import check_run_directory_free

    try:
        check_run_directory_free(args.resume)  # a running run moves its checkpoint on
        ck = checkpoint.load(args.resume)
    except (checkpoint.CheckpointError, DirectoryInUse) as err:
        raise UsageError(str(err)) from None
    if args.out is not None and Path(args.out).resolve() != Path(args.resume).resolve():
        raise UsageError(f"--out {args.out} and --resume {args.resume} differ; a resumed run "
                         "continues in its own directory: drop --out")
    stored = json.loads(ck.attrs.get("cli_args", "{}"))
    explicit = _explicit_options(argv)
    # options given now win; a change that would alter the run is refused later by
    # checkpoint.check_compatible (more --epochs, or another --on-divergence, is fine)
    for name, value in stored.items():
        if name not in explicit:
            setattr(args, name, value)
    args.out = args.resume


def _stored_options(args) -> str:
    """The run's options as JSON, kept in its files so that --resume can restore them."""
    import json

    return json.dumps({k: (str(v) if isinstance(v, Path) else v)
                       for k, v in vars(args).items() if k not in NOT_STORED})


def _prepare_train(args):
    """Validate every argument and load the data; creates nothing."""
    from .. import data, io, models
    from ..data.augment import check_shift
    from ..engines.registry import ENERGY_ENGINES, make_engine
    from ..learning import checkpoint
    from ..learning.loop import (
        TrainConfig,
        check_record_epochs,
        check_run_directory_free,
        run_attrs,
    )
    from ..model import neurons
    from ..model.estimators import Estimator
    from ..model.relaxation import Relaxation
    from ..model.spec import with_feedback, with_feedback_learning, with_learning_rates

    try:
        model = models.load(args.model)
        defaults = dict(getattr(model, "TRAINING", {}))
        net = models.build_network(model)
        if args.neurons in neurons.SETTINGS:
            defaults.update(getattr(model, f"{neurons.SETTINGS[args.neurons]}_TRAINING", {}))
        if args.plasticity is None:
            args.plasticity = defaults.get("plasticity", "phase")
        if args.lr_schedule is None:
            args.lr_schedule = defaults.get("lr_schedule", "constant")

        def pick(name, fallback):
            value = getattr(args, name)
            return value if value is not None else defaults.get(name, fallback)

        # each way of training (engine, rule, neurons, small β) has its validated rates
        tuned = models.tuned_learning_rates(model, args.engine, args.plasticity,
                                            args.neurons, pick("beta", 0.5),
                                            args.feedback_learning or "shared")
        if args.lr is not None or tuned is not None:
            net = with_learning_rates(net, args.lr if args.lr is not None else tuned)
        if args.feedback is not None:
            net = with_feedback(net, args.feedback, args.feedback_init)
        if args.feedback_learning is not None or args.feedback_decay is not None:
            net = with_feedback_learning(net, args.feedback_learning or "shared",
                                         args.feedback_decay)
        estimator = Estimator(pick("estimator", "random-sign"), pick("beta", 0.5))
        relaxation = Relaxation(pick("free_steps", 20), pick("nudged_steps", 4), args.noise,
                                args.activation)
        config = TrainConfig(epochs=pick("epochs", 10), batch_size=pick("batch_size", 20),
                             seed=args.seed, estimator=estimator, relaxation=relaxation,
                             engine=args.engine, target=args.target, device=args.device,
                             dtype=args.dtype, bp_activation=args.bp_activation,
                             bp_loss=args.bp_loss, plasticity=args.plasticity,
                             spiking=neurons.from_options(
                                 args.neurons, model,
                                 **{k: getattr(args, k) for k in neurons.OPTIONS}),
                             shift=pick("shift", 0))
        check_shift(config.shift, net.input.size)
        engine = make_engine(net, config)  # rejects unknown devices before any work
        for option in ("train_size", "test_size"):
            value = getattr(args, option)
            if value is not None and value < 1:
                raise UsageError(f"--{option.replace('_', '-')} = {value}: a subset size "
                                 "must be a positive integer")
        if args.record < 0:
            raise UsageError(f"--record {args.record}: give a number of held-out digits >= 0")
        if args.record and args.engine not in ENERGY_ENGINES:
            raise UsageError(f"--record needs an energy-based engine "
                             f"({', '.join(ENERGY_ENGINES)}); {args.engine} has no dynamics")
        if args.record_epochs is not None:
            if not args.record:
                raise UsageError("--record-epochs needs --record N (how many held-out "
                                 "digits to record)")
            check_record_epochs(args.record_epochs, config.epochs)
        if args.settle_tol is not None and not (args.settle_tol > 0):
            raise UsageError(f"--settle-tol {args.settle_tol}: give a tolerance > 0")
        out = args.out or Path("runs") / f"{net.name}-{time.strftime('%Y%m%d-%H%M%S')}"
        out = io.check_writable_dir(out)
        check_run_directory_free(out)  # a second run is refused before it loads anything
        if args.validation is None and args.validation_split != "stratified":
            raise UsageError("--validation-split needs --validation N (how many digits)")
        digits = data.load(args.data, args.train_size, args.test_size, seed=args.seed)
        if args.validation is not None and args.validation_split == "last":
            digits = data.validation_last(digits, args.validation)
        elif args.validation is not None:
            digits = data.validation_split(digits, args.validation, seed=args.seed)
        if args.record > len(digits.y_test):
            raise UsageError(f"--record {args.record} exceeds the {len(digits.y_test)} "
                             "held-out digits")
        if digits.x_train.shape[1] != net.input.size:
            raise UsageError(f"the data has {digits.x_train.shape[1]} pixels per image, "
                             f"but model {args.model!r} expects {net.input.size}")
        attrs = run_attrs(net, config, digits, {"model": args.model,
                                                "cli_args": _stored_options(args)})
        if args.resume is not None:
            ck = checkpoint.load(out)
            checkpoint.check_compatible(ck, attrs, out)
        if args.lr_schedule != "constant":
            from ..learning.schedule import ScheduledEngine

            engine = ScheduledEngine(net, config, args.lr_schedule,
                                     ck.epoch if args.resume is not None else 0)
        _refuse_overwrite(args, out)
    except UsageError:
        raise
    except (ValueError, io.DirectoryInUse) as err:  # SpecError, DataError and
        raise UsageError(str(err)) from None       # CheckpointError are ValueErrors
    return model, net, config, digits, out, engine, attrs


def _refuse_overwrite(args, out: Path) -> None:
    """:class:`UsageError` if a new run would write over the run in ``out``."""
    from ..learning import checkpoint

    if args.resume is None and (out / checkpoint.FILENAME).exists():
        raise UsageError(f"--out {out} already holds a run (its {checkpoint.FILENAME}); "
                         f"continue it with --resume {out}, or choose a new --out")


def _checkpoint_stamp(out: Path):
    """When the checkpoint in ``out`` was last written (None if there is none)."""
    from ..learning import checkpoint

    path = out / checkpoint.FILENAME
    return path.stat().st_mtime_ns if path.exists() else None


def cmd_train(args) -> int:
    from ..io import DirectoryInUse
    from ..learning.health import SETTLE_TOL, DivergenceError
    from ..learning.loop import hold_run_directory, train

    model, net, config, digits, out, engine, attrs = _prepare_train(args)
    prepared = _checkpoint_stamp(out)
    created = not out.exists()
    try:
        with hold_run_directory(out):  # held until the last file is written
            _refuse_overwrite(args, out)
            if _checkpoint_stamp(out) != prepared:  # what was checked is what runs on
                raise UsageError(f"the run in {out} went on while this command was "
                                 "starting; run the command again")
            history, _, _ = train(net, digits, config, out=out, record=args.record,
                                  progress=not args.no_progress,
                                  extra_attrs={k: attrs[k] for k in ("model", "cli_args")},
                                  engine=engine, record_epochs=args.record_epochs,
                                  resume=args.resume is not None,
                                  on_divergence=args.on_divergence,
                                  settle_tol=args.settle_tol or SETTLE_TOL)
    except DirectoryInUse as err:  # another run took it between the check and now
        raise UsageError(str(err)) from None
    except DivergenceError as err:
        print(f"cortex-ep: training stopped: {err}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        return interrupted(out, progress=not args.no_progress)
    finally:
        if created and out.is_dir() and not any(out.iterdir()):
            shutil.rmtree(out, ignore_errors=True)
    last = history.isel(epoch=-1)
    est = config.estimator
    method = {"rbp": "recurrent backprop", "backprop": "feedforward backprop"}.get(
        config.engine, f"EP {est.name} β={est.beta:g} {config.plasticity} rule")
    if net.separate:
        rules = sorted({p.feedback_rule.replace(":", " λ=") for p in net.separate})
        method += f", separate feedback learning {'/'.join(rules)}"
    if config.spiking is not None:
        spikes = config.spiking
        method += (f", {'Poisson' if spikes.name == 'spiking' else 'integrate-and-fire'} "
                   f"units at {spikes.r_max_hz:g} Hz reading spike {spikes.readout}s")
    print(f"{net.name} {net.describe()} | {method} | {config.engine}"
          f"{'/' + config.target if config.engine == 'brian' else ''} | "
          f"{config.epochs} epochs in {float(history.seconds.sum()):.1f} s | "
          f"held-out accuracy {100 * float(last.test_accuracy):.1f}% "
          f"({len(digits.y_test)} digits) | train {100 * float(last.train_accuracy):.1f}% | "
          f"out: {out}")
    return 0
