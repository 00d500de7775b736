"""Time per training sample: the Brian2 engine against plain batched numpy.

Both integrate the same 784-500-10 EP network (docs/model.rst; 20 free + 4 nudged
projected Euler steps, random-sign β = 0.5) on the embedded MNIST digits, at
batch sizes 1, 16 and 64, in one run on this machine.  The Brian2 build (code
generation and compilation) happens once per schedule length and is reported
separately; per-sample times are whole-epoch times divided by the samples.

With ``--neurons`` it times, at batch 20 and in one run, the spiking neuron
models at the same phase lengths (``IF`` of ``models/two_layer.py``, symmetric
β = 1): Poisson and integrate-and-fire units under the phase rule reading
spike counts and spike traces, and under the continual rule, as ms per
training sample and as a ratio to Poisson units with the same rule and
read-out.

With ``--rules`` it times instead, at batch 20 and in one run, the
plasticity rules and feedback modes: the phase rule and the
continual rule (updates at every nudged step), each with tied and with
separate feedback, as ms per training sample and as a ratio to the default
(phase rule, tied weights).

Usage::

    python analyses/benchmark_brian.py [--samples 4000] [--batches 1 16 64]
                                       [--target cpp_standalone] [--rules | --neurons]

To compare with numpy at full speed, unset OPENBLAS_CORETYPE and
OPENBLAS_L2_SIZE for this command (they pin an older BLAS kernel here).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from cortex_ep.models import load as load_model

from cortex_ep import Relaxation, data
from cortex_ep.engines.brian.engine import TARGETS, BrianEngine, make_schedule
from cortex_ep.engines.reference import ReferenceEngine
from cortex_ep.model import energy
from cortex_ep.model.estimators import Estimator
from cortex_ep.model.plasticity import Plasticity
from cortex_ep.model.spec import with_feedback


def best_time(engine, schedule, W, b, repeats):
    """Seconds of the first run (the build) and the best ms per sample of ``repeats`` more."""
    start = time.perf_counter()
    engine.run(schedule, W, b)
    build = time.perf_counter() - start
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        engine.run(schedule, W, b)
        times.append((time.perf_counter() - start) / schedule.n * 1e3)
    return build, min(times)


def time_neurons(net, x, d, target, batch=20, repeats=3):
    """Brian2 ms per training sample of Poisson and integrate-and-fire units, same phases."""
    from cortex_ep.model.neurons import neuron_model

    phases = load_model("two_layer").IF
    est = Estimator("symmetric", 1.0)
    W, b = energy.init_params(net, 0)
    schedule = make_schedule(x, d, est, batch_size=batch)
    print(f"784-500-10, {len(x)} samples, batch {batch}, symmetric β = 1, phases {phases}, "
          f"Brian2 target {target}; best of {repeats} runs after the build")
    print(f"{'rule':>10} {'read-out':>9} {'neurons':>8} {'build s':>8} {'ms/sample':>10} "
          f"{'x Poisson':>10}")
    for rule, readout in (("phase", "count"), ("phase", "trace"), ("continual", "trace")):
        base = None
        for neurons in ("spiking", "if"):
            spikes = neuron_model(neurons, **phases, readout=readout)
            engine = BrianEngine(net, est, Relaxation(), target=target,
                                 plasticity=Plasticity(rule), spikes=spikes)
            build, best = best_time(engine, schedule, W, b, repeats)
            base = base or best
            print(f"{rule:>10} {readout:>9} {neurons:>8} {build:>8.1f} {best:>10.3f} "
                  f"{best / base:>10.2f}", flush=True)


def time_rules(net, x, d, est, rel, signs, target, batch=20, repeats=3):
    """Brian2 ms per training sample for {phase, continual} × {tied, separate}."""
    print(f"784-500-10, {len(x)} samples, batch {batch}, Brian2 target {target}; "
          f"best of {repeats} runs after the build")
    print(f"{'rule':>10} {'feedback':>9} {'build s':>8} {'ms/sample':>10} {'x default':>10}")
    base = None
    for rule in ("phase", "continual"):
        for feedback in ("tied", "separate"):
            model = net if feedback == "tied" else with_feedback(net, "separate", "random")
            W, b = energy.init_params(model, 0)
            engine = BrianEngine(model, est, rel, target=target, plasticity=Plasticity(rule))
            schedule = make_schedule(x, d, est, batch_size=batch, signs=signs)
            build, best = best_time(engine, schedule, W, b, repeats)
            base = base or best
            print(f"{rule:>10} {feedback:>9} {build:>8.1f} {best:>10.3f} {best / base:>10.2f}",
                  flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=4000)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 16, 64])
    parser.add_argument("--target", choices=TARGETS, default="cpp_standalone")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--rules", action="store_true",
                      help="time the plasticity rules and feedback modes at batch 20")
    mode.add_argument("--neurons", action="store_true",
                      help="time Poisson against integrate-and-fire units at batch 20")
    args = parser.parse_args(argv)

    digits = data.load(train_size=args.samples)
    net = load_model("two_layer").network()
    est, rel = Estimator("random-sign", 0.5), Relaxation(20, 4)
    rng = np.random.default_rng(0)
    x = digits.x_train[rng.permutation(len(digits.y_train))]
    d = data.one_hot(digits.y_train, 10)
    signs = est.signs(len(x), rng)
    W, b = energy.init_params(net, 0)
    if args.rules:
        return time_rules(net, x, d, est, rel, signs, args.target)
    if args.neurons:
        return time_neurons(net, x, d, args.target)

    brian = BrianEngine(net, est, rel, target=args.target)
    numpy_engine = ReferenceEngine(net, est, rel)
    start = time.perf_counter()
    brian.run(make_schedule(x[:len(x)], d, est, batch_size=args.batches[0], signs=signs),
              W, b)
    build = time.perf_counter() - start
    print(f"784-500-10, {len(x)} samples, 20 free + 4 nudged steps, Brian2 target "
          f"{args.target} (first run incl. build: {build:.1f} s)")
    print(f"{'batch':>6} {'brian ms/sample':>16} {'numpy ms/sample':>16} "
          f"{'brian/numpy':>12}")
    for batch in args.batches:
        schedule = make_schedule(x, d, est, batch_size=batch, signs=signs)
        start = time.perf_counter()
        brian.run(schedule, W, b)
        t_brian = (time.perf_counter() - start) / len(x) * 1e3
        start = time.perf_counter()
        numpy_engine.epoch(W, b, x, d, signs, batch, x[:0])
        t_numpy = (time.perf_counter() - start) / len(x) * 1e3
        print(f"{batch:>6} {t_brian:>16.3f} {t_numpy:>16.3f} {t_brian / t_numpy:>12.2f}",
              flush=True)


if __name__ == "__main__":
    main()
