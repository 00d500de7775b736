"""``cortex-ep gradcheck``: EP's estimate (or the continual rule's update) against the
exact gradient, for a fresh network or a training run's weights."""

from __future__ import annotations

import json
import time
from pathlib import Path

from .messages import HelpFormatter, UsageError, seed


def add_gradcheck_parser(sub) -> None:
    """Register ``gradcheck`` on the ``cortex-ep`` subcommand set ``sub``."""
    from ..model.energy import ACTIVATIONS
    from ..model.estimators import ESTIMATORS
    from ..model.plasticity import RULES as PLASTICITY_RULES
    from ..model.spec import FEEDBACK_INITS, FEEDBACK_MODES

    g = sub.add_parser("gradcheck", help="EP gradient estimates against the exact gradient",
                       description="Compare EP's estimate with the exact gradient of C(s⁰) "
                                   "(implicit differentiation) for a network and a batch.",
                       formatter_class=HelpFormatter)
    g.add_argument("--model", default="two_layer", help="model for a fresh network")
    g.add_argument("--run", type=Path, default=None,
                   help="a training run's output directory: check its learned weights")
    g.add_argument("--data", default=None, help="as for train; default: embedded digits")
    g.add_argument("--batch", type=int, default=20, help="training digits in the batch")
    g.add_argument("--beta", type=float, nargs="+", default=None,
                   help="β values (default: 1e-5 … 1 log-spaced plus 0.001 … 0.009)")
    g.add_argument("--estimator", nargs="+", choices=ESTIMATORS,
                   default=["one-sided", "symmetric"], help="estimators to compare")
    g.add_argument("--noise", type=float, default=0.0, help="neuronal noise σ")
    g.add_argument("--repeats", type=int, default=1, help="noise realisations / sign draws")
    g.add_argument("--seed", type=seed, default=0,
                   help="the batch's digits, a fresh network's weights and the noise")
    g.add_argument("--activation", choices=tuple(ACTIVATIONS), default=None,
                   help="ρ (default: the run's, else hard_sigmoid)")
    g.add_argument("--precision", choices=("longdouble", "float64"), default="longdouble",
                   help="arithmetic of the EP phases")
    g.add_argument("--tol", type=float, default=None,
                   help="relax each phase until max|ds/dt|·τ < tol; unset: 1e-18 in "
                        "longdouble, 1e-15 in float64")
    g.add_argument("--plasticity", choices=PLASTICITY_RULES, default="phase",
                   help="continual: compare the total continual update over one batch "
                        "with the exact gradient, for every --lr")
    g.add_argument("--lr", type=float, nargs="+", default=None,
                   help="learning rates of the continual check (default: 1e-6 … 1, one "
                        "per decade)")
    g.add_argument("--nudged-steps", type=int, default=200,
                   help="learning steps per sample of the continual check")
    g.add_argument("--feedback", choices=FEEDBACK_MODES, default=None,
                   help="feedback mode of a fresh network (a --run keeps its own)")
    g.add_argument("--feedback-init", choices=FEEDBACK_INITS, default="transpose",
                   help="with --feedback separate: how a fresh network's B starts")
    g.add_argument("--out", type=Path, default=None,
                   help="output directory for gradcheck.nc (default: runs/gradcheck-<time>)")


def _load_run(run: Path):
    """Network, weights and activation of a training run directory."""
    from .. import io, models
    from ..learning.weights import params_from_weights

    for name in ("history.nc", "weights.nc"):
        if not (run / name).is_file():
            raise UsageError(f"--run {run} has no {name}; give the --out directory of a "
                             "cortex-ep train run")
    from ..model.spec import with_feedback, with_feedback_learning

    history = io.read_dataset(run / "history.nc")
    weights = io.read_dataset(run / "weights.nc")
    model = str(history.attrs.get("model", "two_layer"))
    net = models.build_network(models.load(model))
    options = json.loads(str(history.attrs.get("cli_args", "{}")))
    if options.get("feedback"):
        net = with_feedback(net, options["feedback"], options.get("feedback_init",
                                                                  "transpose"))
    if options.get("feedback_learning") or options.get("feedback_decay") is not None:
        net = with_feedback_learning(net, options.get("feedback_learning") or "shared",
                                     options.get("feedback_decay"))
    for proj in net.projections:
        var = f"W_{proj.name}"
        want = (net[proj.pre].size, net[proj.post].size)
        if var not in weights or weights[var].shape != want:
            raise UsageError(f"the weights in {run} do not fit model {model!r} "
                             f"({var} should have shape {want}); the run is from another "
                             "model")
    W, b = params_from_weights(net, weights)
    return net, W, b, str(history.attrs.get("activation", "hard_sigmoid"))


def cmd_gradcheck(args) -> int:
    import numpy as np
    import xarray as xr

    from .. import data, io, models
    from ..gradients import gradcheck
    from ..model import energy

    try:
        betas = gradcheck.default_betas() if args.beta is None else np.asarray(args.beta)
        if not np.all(np.isfinite(betas)) or np.any(betas <= 0):
            raise UsageError(f"--beta {args.beta}: every β must be finite and > 0 "
                             "(the estimators divide by β)")
        if args.repeats < 1 or args.batch < 1 or args.nudged_steps < 1:
            raise UsageError("--repeats, --batch and --nudged-steps must be positive "
                             "integers")
        lrs = np.logspace(-6, 0, 7) if args.lr is None else np.asarray(args.lr, float)
        if not np.all(np.isfinite(lrs)) or np.any(lrs <= 0):
            raise UsageError(f"--lr {args.lr}: every learning rate must be finite and > 0")
        if args.plasticity == "continual" and not set(args.estimator) <= {"one-sided",
                                                                          "symmetric"}:
            raise UsageError("the continual check takes --estimator one-sided or symmetric "
                             "(random signs average over draws; check each sign instead)")
        if args.noise < 0 or not np.isfinite(args.noise):
            raise UsageError(f"--noise {args.noise}: σ must be finite and >= 0")
        if args.run is not None:
            net, W, b, activation = _load_run(args.run)
        else:
            from ..model.spec import with_feedback

            net = models.build_network(models.load(args.model))
            if args.feedback is not None:
                net = with_feedback(net, args.feedback, args.feedback_init)
            W, b = energy.init_params(net, args.seed)
            activation = "hard_sigmoid"
        activation = args.activation or activation
        out = io.check_writable_dir(args.out or Path("runs") /
                                    f"gradcheck-{time.strftime('%Y%m%d-%H%M%S')}")
        digits = data.load(args.data, seed=args.seed)
        data.check_size(args.batch, len(digits.y_train), "--batch")
        if digits.x_train.shape[1] != net.input.size:
            raise UsageError(f"the data has {digits.x_train.shape[1]} pixels per image, but "
                             f"the network expects {net.input.size}")
    except UsageError:
        raise
    except ValueError as err:
        raise UsageError(str(err)) from None
    idx = data.stratified_indices(digits.y_train, args.batch, args.seed)
    x, d = digits.x_train[idx], data.one_hot(digits.y_train[idx], net.output.size)
    if args.plasticity == "continual":
        from ..gradients import continual as gradcheck_continual

        tables = []
        for name in args.estimator:
            ds = gradcheck_continual.continual_gradcheck(
                net, x, d, W, b, lrs, betas, name, args.nudged_steps, activation,
                **({} if args.tol is None else {"tol": args.tol}))
            tables.append(ds.expand_dims(estimator=[name]))
            print(gradcheck_continual.summarize(ds))
        ds = xr.concat(tables, "estimator", combine_attrs="drop_conflicts")
        summary = None
    else:
        ds = gradcheck.gradcheck(net, x, d, W, b, betas, tuple(args.estimator), args.noise,
                                 args.repeats, args.seed, activation, args.precision,
                                 args.tol)
        summary = gradcheck.summarize(ds)
    ds.attrs.update(source=str(args.run) if args.run else f"fresh {net.name}, seed {args.seed}",
                    data=digits.source)
    out.mkdir(parents=True, exist_ok=True)
    io.write_dataset(ds, out / "gradcheck.nc")
    if summary:
        print(summary)
    print(f"written: {out / 'gradcheck.nc'}")
    return 0
