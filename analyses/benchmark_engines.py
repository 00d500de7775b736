"""Time per epoch: EP in the torch twin, EP in Brian2, and backprop, in one run.

All three train the 784-500-10 network of ``models/two_layer.py`` with its
settings (20 free + 4 nudged steps, random-sign β = 0.5, batch 20) on the
same digits on this machine:

- EP (torch): the batched twin, float32;
- EP (Brian2): the Brian2 engine, ``cpp_standalone`` (build time excluded,
  reported separately);
- BP: the feedforward network of the same layers (logistic, cross-entropy),
  trained by autograd with SGD.

Two training sets: the 4,000 embedded digits, and a full-MNIST-sized set of
60,000 (``--data DIR`` with the MNIST IDX files, else the embedded digits tiled).
Epoch times exclude the held-out evaluation.  The twin runs under its CPU
thread policy (:mod:`cortex_ep.engines.twin.threads`), which the first line prints.

Usage::

    python analyses/benchmark_engines.py [--data DIR] [--device cpu] [--skip-brian-60k]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from cortex_ep.models import load as load_model

from cortex_ep import Relaxation, TrainConfig, data
from cortex_ep.engines.registry import make_engine
from cortex_ep.engines.twin import threads
from cortex_ep.model import energy
from cortex_ep.model.estimators import Estimator

#: the public Laborieux-Axel/Equilibrium-Propagation code, 784-512-10 (T1 30, T2 10,
#: batch 50), measured on a 2-core AMD EPYC: ms per training sample
PEER_MS_PER_SAMPLE = 0.77


def time_epoch(engine, W, b, x, d, signs, batch):
    start = time.perf_counter()
    engine.epoch(W, b, x, d, signs, batch, x[:0])
    return time.perf_counter() - start


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=None, help="full MNIST IDX directory for 60k")
    parser.add_argument("--batch", type=int, default=20)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=3, help="epochs timed (best kept)")
    parser.add_argument("--skip-brian-60k", action="store_true")
    args = parser.parse_args(argv)
    if args.device == "cpu":
        print(threads.describe(args.batch))

    model = load_model("two_layer")
    net = model.network()
    est = Estimator(model.TRAINING["estimator"], model.TRAINING["beta"])
    rel = Relaxation(model.TRAINING["free_steps"], model.TRAINING["nudged_steps"])
    W, b = energy.init_params(net, 0)
    small = data.load()
    if args.data:
        big = data.load(args.data)
        x_big, y_big = big.x_train[:60000], big.y_train[:60000]
        big_name = f"MNIST ({args.data})"
    else:
        reps = -(-60000 // len(small.y_train))
        x_big = np.tile(small.x_train, (reps, 1))[:60000]
        y_big = np.tile(small.y_train, reps)[:60000]
        big_name = "embedded digits tiled"
    rng = np.random.default_rng(0)
    engines = {
        "EP (torch)": TrainConfig(engine="torch", estimator=est, relaxation=rel,
                                  device=args.device),
        "EP (Brian2)": TrainConfig(engine="brian", estimator=est, relaxation=rel),
        "BP": TrainConfig(engine="backprop", estimator=est, relaxation=rel,
                          device=args.device),
    }
    results = {}
    for label, (x, y) in {"4,000 embedded": (small.x_train, small.y_train),
                          f"60,000 {big_name}": (x_big, y_big)}.items():
        order = rng.permutation(len(y))
        x, d = x[order], data.one_hot(y[order], 10)
        signs = est.signs(len(y), rng)
        for name, config in engines.items():
            if name == "EP (Brian2)" and len(y) > 4000 and args.skip_brian_60k:
                continue
            engine = make_engine(net, config)
            start = time.perf_counter()
            first = time_epoch(engine, W, b, x, d, signs, args.batch)
            setup = time.perf_counter() - start
            best = min([first] + [time_epoch(engine, W, b, x, d, signs, args.batch)
                                  for _ in range(args.repeats - 1)])
            results[label, name] = best
            note = f" (first epoch incl. build {setup:.1f} s)" if name == "EP (Brian2)" else ""
            print(f"{label:<36} {name:<12} {best:8.2f} s/epoch "
                  f"{1e3 * best / len(y):7.3f} ms/sample{note}", flush=True)
        bp = results[label, "BP"]
        for name in engines:
            if (label, name) in results and name != "BP":
                print(f"{label:<36} {name:<12} / BP = {results[label, name] / bp:.2f}")
    ep = min(v / 4000 for (lab, n), v in results.items() if n == "EP (torch)" and
             lab.startswith("4,000")) * 1e3
    print(f"EP (torch) {ep:.3f} ms/sample against {PEER_MS_PER_SAMPLE} ms/sample for the "
          f"peer code (×{PEER_MS_PER_SAMPLE / ep:.1f} faster)")


if __name__ == "__main__":
    main()
