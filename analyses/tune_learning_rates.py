"""Choose learning rates (and the initial weight scale) on a validation split.

Every engine of the EP-versus-backprop race gets the same treatment: a grid
of learning-rate scales around its starting point, separately for the input
and the output projection, and two initial weight scales, each trained for
the same epochs on 3,200 of the 4,000 embedded training digits and scored on
the other 800 (stratified).  The 1,000 held-out digits are never touched.  The
winner per engine is the highest mean validation accuracy over the last three
epochs; the script prints the table and the values to put in the model file.

With ``--plasticity continual`` it tunes the continual rule
(:mod:`cortex_ep.model.plasticity`) in the torch twin instead, at the validated
initial scale: the phase rule's rates need not carry over, since a continual
update changes the weights at every nudged step of every sample.

Usage::

    python analyses/tune_learning_rates.py [--epochs 10] [--out runs/tuning] [--quick]
    python analyses/tune_learning_rates.py --plasticity continual --epochs 5
"""

from __future__ import annotations

import argparse
import itertools
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import xarray as xr
from cortex_ep.models import load as load_model

from cortex_ep import Relaxation, data, io
from cortex_ep.learning.loop import TrainConfig, train
from cortex_ep.model.estimators import Estimator
from cortex_ep.model.spec import with_learning_rates

#: engine -> base learning rates (input -> hidden, hidden -> output)
BASE = {"torch": (0.1, 0.05), "rbp": (0.05, 0.02), "backprop": (0.5, 0.5)}
#: scales tried for the first and for the second projection
SCALES = ((0.5, 1.0, 2.0, 4.0), (0.5, 1.0, 2.0))
GAINS = (1.0, 0.5)
#: the continual rule: twin only, at two_layer's validated initial scale
CONTINUAL = {"base": {"torch": (0.1, 0.05)}, "scales": ((1.0, 2.0, 4.0), (0.5, 1.0, 2.0)),
             "gains": (0.5,)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="two_layer")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--validation", type=int, default=800)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("runs/tuning"))
    parser.add_argument("--quick", action="store_true",
                        help="2 epochs on 600 digits: a smoke test of the procedure")
    parser.add_argument("--plasticity", choices=("phase", "continual"), default="phase",
                        help="tune the phase rule (every engine) or the continual rule")
    args = parser.parse_args(argv)
    continual = args.plasticity == "continual"
    base_rates = CONTINUAL["base"] if continual else BASE
    scales = CONTINUAL["scales"] if continual else SCALES
    gains = CONTINUAL["gains"] if continual else GAINS
    out = io.check_writable_dir(args.out)
    model = load_model(args.model)
    digits = data.load(train_size=600 if args.quick else None)
    digits = data.validation_split(digits, 120 if args.quick else args.validation, args.seed)
    epochs = 2 if args.quick else args.epochs
    defaults = model.TRAINING
    estimator = Estimator(defaults["estimator"], defaults["beta"])
    relaxation = Relaxation(defaults["free_steps"], defaults["nudged_steps"])
    base_net = model.network()
    rows = []
    print(f"{args.model}: {len(digits.y_train)} training / {len(digits.y_test)} validation "
          f"digits, {epochs} epochs, batch {defaults['batch_size']}, {args.plasticity} rule")
    print(f"{'engine':<10}{'gain':>6}{'learning rates':>18}{'val. acc.':>11}{'s':>7}")
    for engine, base in base_rates.items():
        for gain, *scale in itertools.product(gains, *scales):
            lrs = [round(s * lr, 6) for s, lr in zip(scale, base)]
            net = with_learning_rates(base_net, lrs)
            net = replace(net, projections=tuple(replace(p, init_gain=gain)
                                                  for p in net.projections))
            config = TrainConfig(epochs=epochs, batch_size=defaults["batch_size"],
                                 seed=args.seed, estimator=estimator, relaxation=relaxation,
                                 engine=engine, plasticity=args.plasticity)
            start = time.perf_counter()
            history, _, _ = train(net, digits, config, progress=False)
            score = float(history.test_accuracy[-3:].mean())
            rows.append((engine, gain, tuple(lrs), score, time.perf_counter() - start))
            print(f"{engine:<10}{gain:>6g}{str(tuple(lrs)):>18}{100 * score:>10.1f}%"
                  f"{rows[-1][4]:>7.1f}", flush=True)
    table = xr.Dataset(
        {"validation_accuracy": ("run", [r[3] for r in rows]),
         "seconds": ("run", [r[4] for r in rows])},
        coords={"engine": ("run", [r[0] for r in rows]),
                "init_gain": ("run", [r[1] for r in rows]),
                "learning_rates": ("run", [" ".join(map(str, r[2])) for r in rows])},
        attrs={"model": args.model, "epochs": epochs, "validation": len(digits.y_test),
               "plasticity": args.plasticity,
               "score": "mean validation accuracy of the last three epochs"})
    out.mkdir(parents=True, exist_ok=True)
    io.write_dataset(table, out / "tuning.nc")
    print("\nbest per engine (validation):")
    for engine in base_rates:
        best = max((r for r in rows if r[0] == engine), key=lambda r: r[3])
        print(f"  {engine:<10} init_gain {best[1]:g}  learning rates {best[2]}  "
              f"{100 * best[3]:.1f}%")
    for gain in gains:
        mean = np.mean([max(r[3] for r in rows if r[0] == e and r[1] == gain)
                        for e in base_rates])
        print(f"  init_gain {gain:g}: best validation accuracy averaged over engines "
              f"{100 * mean:.1f}%")
    print(f"written: {out / 'tuning.nc'}")


if __name__ == "__main__":
    main()
