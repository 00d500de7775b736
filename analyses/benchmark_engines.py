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

``--part spiking`` times spiking EP instead, on ``--spiking-samples`` embedded
digits: integrate-and-fire units with the model's ``IF`` settings (1 kHz, dt
0.5 ms, 100 ms free and two 100 ms nudged phases, symmetric β = 1, phase rule
on spike counts), and Poisson units with the same phases and rule (reading
spike traces), each in the twin at batch 20 and 100 (and at 100 on one thread)
and in Brian2 at batch 100, best of ``--repeats`` epochs each, with the ratio
Brian2 / twin per training sample.

Usage::

    python analyses/benchmark_engines.py [--data DIR] [--device cpu] [--skip-brian-60k]
    python analyses/benchmark_engines.py --part spiking [--spiking-samples 1000]
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
from cortex_ep.model.neurons import IntegrateAndFire, Spiking

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
    parser.add_argument("--part", choices=("rate", "spiking"), default="rate")
    parser.add_argument("--spiking-samples", type=int, default=1000,
                        help="embedded training digits timed per spiking row")
    args = parser.parse_args(argv)
    if args.part == "spiking":
        return spiking_rows(args)
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


#: the twin's batch sizes in the spiking rows; Brian2 runs at the larger one
SPIKING_BATCHES = (20, 100)


def spiking_rows(args):
    """ms per training sample of spiking EP in the twin and in Brian2, and their ratio.

    Every engine is timed over ``--repeats`` epochs after a first one (which
    builds Brian2's binary and compiles the twin's kernel), the best kept.  The
    twin runs under its thread policy, and at the larger batch once more on one
    thread (``CORTEX_EP_THREADS=1``), Brian2 on one thread (its engine's setting).
    """
    import os

    model = load_model("two_layer")
    net = model.network(model.IF_LEARNING_RATES)
    training = model.IF_TRAINING
    est = Estimator(training["estimator"], training["beta"])
    digits = data.load()
    n = args.spiking_samples
    x, d = digits.x_train[:n], data.one_hot(digits.y_train[:n], 10)
    signs = np.ones(n)
    W, b = energy.init_params(net, 0)
    models = {"integrate-and-fire, counts": IntegrateAndFire(**model.IF),
              "Poisson, traces": Spiking(**model.IF, readout="trace")}
    print(threads.describe(max(SPIKING_BATCHES)) if args.device == "cpu" else args.device)
    large = SPIKING_BATCHES[-1]
    runs = [("torch", batch, None) for batch in SPIKING_BATCHES]
    if args.device == "cpu":
        runs.append(("torch", large, "1"))
    runs.append(("brian", large, None))
    for label, spikes in models.items():
        timed = {}
        for engine_name, batch, forced in runs:
            config = TrainConfig(engine=engine_name, estimator=est, relaxation=Relaxation(),
                                 plasticity=training["plasticity"], spiking=spikes,
                                 device=args.device)
            engine = make_engine(net, config)
            before = os.environ.get(threads.ENV_VAR)
            if forced:
                os.environ[threads.ENV_VAR] = forced
            try:
                time_epoch(engine, W, b, x, d, signs, batch)
                best = min(time_epoch(engine, W, b, x, d, signs, batch)
                           for _ in range(args.repeats))
            finally:
                if forced:
                    if before is None:
                        del os.environ[threads.ENV_VAR]
                    else:
                        os.environ[threads.ENV_VAR] = before
            name = ("EP (Brian2)" if engine_name == "brian"
                    else "EP (torch, 1 thread)" if forced else "EP (torch)")
            timed[name, batch] = 1e3 * best / n
            print(f"{label:<28} {name:<20} batch {batch:>3} {timed[name, batch]:7.3f} "
                  f"ms/sample", flush=True)
        brian = timed["EP (Brian2)", large]
        for (name, batch), ms in timed.items():
            if name != "EP (Brian2)":
                print(f"{label:<28} Brian2 / {name[4:-1]} at batch {batch:>3}: "
                      f"{brian / ms:.1f}x")


if __name__ == "__main__":
    main()
