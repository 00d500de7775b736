"""How many spikes EP needs: the spiking network against the rate model, for the same weights.

Martin et al. (2021), "EqSpike: spike-driven equilibrium propagation for
neuromorphic implementations" (arXiv:2010.07859) report 97.6 % on MNIST with
spiking EP; no code is public.  Here the spiking neurons of
:mod:`cortex_ep.model.neurons` (Poisson at ``r_max ρ(s)``, exponential synapses,
plasticity from spike traces) run in the Brian2 engine.

1. **Weights.**  The rate network of ``models/two_layer.py`` trained for
   ``--epochs`` epochs by the torch twin on the embedded split.
2. **Update cosine.**  For each setting (``r_max``, free and nudged phase
   lengths) the continual rule's total update over one batch of ``--batch``
   training digits, spiking against the rate model with the same phase
   lengths in ms (both Brian2, same weights, same digits; the spiking
   default's symmetric estimator at β = 1), per parameter and over all of
   them.  The rates are the model's × 1e-3, so that the update is its small-rate
   direction (the weights barely move during a phase, as in ``gradcheck``).
3. **Accuracy and cost.**  The free-phase prediction of ``--test`` held-out
   digits with those weights (readout: the output state ``s`` at the end of
   the free phase), spikes per sample and seconds per sample of simulation
   (the second run of a built binary: no compilation).
4. **STDP window.**  Pre and post spike pairs at a time difference Δt, run
   through the synapse code of the continual spike-trace rule, with the pre
   spike before, early in and late in the learning phase.

Writes ``spiking.nc``, ``stdp_window.nc``, ``spiking_cosine.png``,
``stdp_window.png`` and a printed table.

Usage::

    python analyses/spiking.py [--quick] [--out runs/spiking]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import xarray as xr

from cortex_ep import io

#: (r_max Hz, free ms, nudged ms, trace τ ms) of the sweep: r_max at the default phases,
#: then the phases at the default rate
SETTINGS = ((100.0, 100.0, 40.0, 10.0), (300.0, 100.0, 40.0, 10.0),
            (1000.0, 100.0, 40.0, 10.0), (1000.0, 200.0, 80.0, 20.0),
            (1000.0, 400.0, 160.0, 40.0))
QUICK_SETTINGS = ((200.0, 60.0, 20.0, 10.0), (1000.0, 120.0, 40.0, 20.0))
#: pre-spike times of the STDP window (ms), relative to a 40 ms learning phase from 0
PRE_SPIKE_TIMES = (-10.0, 10.0, 30.0)


def trained_weights(net, digits, epochs: int, seed: int = 0):
    """The rate network trained by the torch twin (the weights every setting shares)."""
    from cortex_ep.learning.loop import TrainConfig, train

    if epochs == 0:
        from cortex_ep.model import energy

        return energy.init_params(net, seed)
    config = TrainConfig(epochs=epochs, engine="torch", seed=seed)
    _, W, b = train(net, digits, config, progress=False)
    return W, b


def flat(net, W, b) -> dict:
    out = {f"W_{p.name}": np.ravel(W[p.name]) for p in net.projections}
    out.update({f"b_{p.name}": np.ravel(b[p.name]) for p in net.dynamic})
    return out


def cosine(a, b) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


#: the estimator of the comparison: the spiking default's
ESTIMATOR, BETA = "symmetric", 1.0
#: learning rates relative to the model's: the small-rate direction of the update
RATE_FACTOR = 1e-3


def rate_update(net, W, b, x, d, x_test, y_test, spikes, target, build_root):
    """The rate model's continual update and accuracy with ``spikes``' phase lengths."""
    from cortex_ep import Relaxation
    from cortex_ep.engines.brian.engine import BrianEngine, make_schedule
    from cortex_ep.model.estimators import Estimator
    from cortex_ep.model.plasticity import Plasticity

    est = Estimator(ESTIMATOR, BETA)
    rel = Relaxation(free_steps=int(round(spikes.free_ms / net.dt)),
                     nudged_steps=int(round(spikes.nudged_ms / net.dt)))
    engine = BrianEngine(net, est, rel, target=target, build_root=build_root,
                         plasticity=Plasticity("continual"))
    res = engine.run(make_schedule(x, d, est, batch_size=len(x)), W, b)
    free = engine.run(make_schedule(x_test, np.zeros((len(x_test), net.output.size)), est,
                                    learn=False), W, b).free_output
    return flat(net, res.W, res.b), float(np.mean(free.argmax(1) == y_test))


def run_setting(net, W, b, x, d, x_test, y_test, spikes, target, build_root):
    """One setting: the continual update over one batch, spikes, time and accuracy."""
    from cortex_ep import Relaxation
    from cortex_ep.engines.brian.engine import BrianEngine, concat, make_schedule
    from cortex_ep.model.estimators import Estimator
    from cortex_ep.model.plasticity import Plasticity

    est = Estimator(ESTIMATOR, BETA)
    engine = BrianEngine(net, est, Relaxation(), target=target, build_root=build_root,
                         plasticity=Plasticity("continual"), spikes=spikes)
    n_out = net.output.size
    schedule = concat(make_schedule(x, d, est, batch_size=len(x)),
                      make_schedule(x_test, np.zeros((len(x_test), n_out)), est,
                                    learn=False))
    engine.run(schedule, W, b, record=True)  # builds (standalone) and warms up
    start = time.perf_counter()
    res = engine.run(schedule, W, b, record=True)
    seconds = time.perf_counter() - start
    n_spikes = sum(len(v) for k, v in res.states.items() if isinstance(k, tuple))
    update = {k: v for k, v in flat(net, res.W, res.b).items()}
    accuracy = float(np.mean(res.free_output[len(x):].argmax(1) == y_test))
    return update, n_spikes / schedule.n, seconds / schedule.n, accuracy


def sweep(net, W, b, digits, settings, batch: int, n_test: int, target, build_root,
          log=print) -> xr.Dataset:
    from cortex_ep.data import one_hot, stratified_indices
    from cortex_ep.model.neurons import Spiking
    from cortex_ep.model.spec import with_learning_rates

    train, test = (stratified_indices(digits.y_train, batch),
                   stratified_indices(digits.y_test, n_test))
    x, d = digits.x_train[train], one_hot(digits.y_train[train], net.output.size)
    x_test, y_test = digits.x_test[test], digits.y_test[test]
    before = flat(net, W, b)
    net = with_learning_rates(net, [RATE_FACTOR * p.lr for p in net.projections])
    names, rows, rate_accuracies, rates = list(before), [], [], {}
    for r_max, free, nudged, tau_trace in settings:
        spikes = Spiking(r_max_hz=r_max, free_ms=free, nudged_ms=nudged,
                         tau_trace_ms=tau_trace)
        if (free, nudged) not in rates:
            rates[free, nudged] = rate_update(net, W, b, x, d, x_test, y_test, spikes,
                                              target, build_root)
        rate_after, rate_accuracy = rates[free, nudged]
        rate_update_ = {k: rate_after[k] - before[k] for k in names}
        rate_accuracies.append(rate_accuracy)
        after, per_sample, seconds, accuracy = run_setting(
            net, W, b, x, d, x_test, y_test, spikes, target, build_root)
        update = {k: after[k] - before[k] for k in names}
        cos = [cosine(update[k], rate_update_[k]) for k in names]
        total = cosine(np.concatenate([update[k] for k in names]),
                       np.concatenate([rate_update_[k] for k in names]))
        per_unit = r_max * free / 1000.0
        rows.append((cos, total, per_sample, seconds, accuracy, per_unit))
        log(f"r_max {r_max:6.0f} Hz  free {free:5.0f} ms  nudged {nudged:4.0f} ms: cosine "
            f"{total:.3f}, accuracy {100 * accuracy:.1f}%, {per_sample:.0f} spikes and "
            f"{1000 * seconds:.1f} ms per sample")
    settings = np.asarray(settings)
    return xr.Dataset(
        {"cosine": (("setting", "param"), np.array([r[0] for r in rows]),
                    {"long_name": "cosine of the spiking to the rate continual update"}),
         "cosine_all": ("setting", [r[1] for r in rows]),
         "spikes_per_sample": ("setting", [r[2] for r in rows], {"units": "1"}),
         "seconds_per_sample": ("setting", [r[3] for r in rows], {"units": "s"}),
         "accuracy": ("setting", [r[4] for r in rows],
                      {"long_name": "free-phase accuracy of the spiking network"}),
         "rate_accuracy": ("setting", rate_accuracies,
                           {"long_name": "free-phase accuracy of the rate model, same phases"}),
         "spikes_per_phase_at_rho1": ("setting", [r[5] for r in rows],
                                      {"long_name": "r_max · T_free", "units": "1"})},
        coords={"setting": np.arange(len(rows)), "param": names,
                "r_max": ("setting", settings[:, 0], {"units": "Hz"}),
                "free_ms": ("setting", settings[:, 1], {"units": "ms"}),
                "nudged_ms": ("setting", settings[:, 2], {"units": "ms"}),
                "tau_trace_ms": ("setting", settings[:, 3], {"units": "ms"})},
        attrs={"batch": batch, "test_digits": n_test, "network": net.describe(),
               "estimator": ESTIMATOR, "beta": BETA, "rule": "continual",
               "learning_rate_factor": RATE_FACTOR})


def stdp_window(spikes, delays_ms, pre_times=PRE_SPIKE_TIMES, learn_ms: float = 40.0,
                lead_ms: float = 60.0) -> xr.Dataset:
    """Weight change of one synapse from one pre/post spike pair, by the continual
    spike-trace rule's own synapse code (Brian2, numpy target).

    The learning phase runs from 0 to ``learn_ms``; the simulation starts
    ``lead_ms`` earlier.  The pre spike is at each of ``pre_times`` (ms), the
    post spike ``Δt`` later.  Δw is in units of the learning rate.
    """
    import brian2 as b2
    from brian2.devices.device import reset_device

    from cortex_ep.engines.brian import equations as eq

    reset_device("runtime")
    b2.prefs.codegen.target = "numpy"
    delays = np.asarray(delays_ms, float)
    pre_times = np.asarray(pre_times, float)
    dt = spikes.dt_ms
    n = len(delays) * len(pre_times)
    pre = np.repeat(pre_times, len(delays))
    steps = {"pre": np.round((pre + lead_ms) / dt),
             "post": np.round((pre + np.tile(delays, len(pre_times)) + lead_ms) / dt)}
    total = int(round((lead_ms + learn_ms) / dt))
    first_learning_step = int(round(lead_ms / dt))
    namespace = {"tau_trace": spikes.tau_trace_ms * b2.ms, "trace_jump": spikes.trace_jump,
                 "lr": 1.0, "first": first_learning_step,
                 "step_scale": b2.TimedArray([1.0], dt=(total + 1) * dt * b2.ms)}
    clock = b2.Clock(dt=dt * b2.ms)
    groups = {}
    for side in ("pre", "post"):
        group = b2.NeuronGroup(
            n, f"""dx/dt = -x / tau_trace : 1
                   {eq.previous(spikes)} : 1
                   spike_step : integer (constant)
                   k = timestep(t, dt) : integer""",
            threshold="k == spike_step", reset=eq.SPIKE_RESET,
            events={"plastic": "k >= first"}, clock=clock, namespace=namespace,
            method="euler", name=f"stdp_{side}")
        group.resetter["spike"].when, group.resetter["spike"].order = "after_thresholds", -1
        group.run_regularly(f"{eq.previous(spikes)} = x", when="end")
        group.spike_step = steps[side].astype(int)
        groups[side] = group
    synapses = b2.Synapses(groups["pre"], groups["post"], "w : 1",
                           on_pre=eq.rule_code("lr", True, spikes),
                           on_event={"plastic": "plastic"}, clock=clock,
                           namespace=namespace, name="stdp_synapses")
    synapses.connect(j="i")
    network = b2.Network(*groups.values(), synapses)
    network.run(total * dt * b2.ms, namespace=namespace)
    dw = np.asarray(synapses.w[:]).reshape(len(pre_times), len(delays))
    return xr.Dataset(
        {"dw": (("pre_time", "delta_t"), dw,
                {"long_name": "weight change per pair", "units": "learning rate"})},
        coords={"pre_time": ("pre_time", pre_times, {"units": "ms"}),
                "delta_t": ("delta_t", delays, {"units": "ms"})},
        attrs={"tau_trace_ms": spikes.tau_trace_ms, "learn_ms": learn_ms,
               "r_max_hz": spikes.r_max_hz, "dt_ms": dt})


def plot(ds: xr.Dataset, window: xr.Dataset, out: Path) -> list:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    rate_sweep = ds.where((ds.free_ms == ds.free_ms.min()), drop=True)
    phase_sweep = ds.where(ds.r_max == ds.r_max.max(), drop=True)
    for label, part, marker in (("r_max varied", rate_sweep, "o"),
                                ("phase lengths varied", phase_sweep, "s")):
        axes[0].plot(part.spikes_per_phase_at_rho1, part.cosine_all, marker=marker,
                     label=label)
        axes[1].plot(part.spikes_per_phase_at_rho1, 100 * part.accuracy, marker=marker,
                     label=label)
    axes[1].plot(ds.spikes_per_phase_at_rho1, 100 * ds.rate_accuracy, "k+", ms=10,
                 label="rate model, same weights and phases")
    for ax in axes:
        ax.set_xscale("log")
        ax.set_xlabel("spikes per free phase at ρ = 1 (r_max · T_free)")
        ax.legend()
    axes[0].set_ylabel("cosine(spiking update, rate update)")
    axes[0].set_ylim(min(0.0, float(ds.cosine_all.min()) - 0.05), 1)
    axes[1].set_ylabel("held-out accuracy with the same weights (%)")
    fig.suptitle(f"Spiking EP against the rate model ({ds.attrs['network']}, continual rule, "
                 f"{ds.attrs['estimator']} β = {ds.attrs['beta']:g}, batch of "
                 f"{ds.attrs['batch']})")
    fig.tight_layout()
    paths.append(_save(fig, out / "spiking_cosine.png"))
    fig, ax = plt.subplots(figsize=(6, 4))
    for pre_time in window.pre_time.values:
        ax.plot(window.delta_t, window.dw.sel(pre_time=pre_time), marker=".",
                label=f"pre spike at {pre_time:g} ms")
    ax.axhline(0, color="k", lw=0.5)
    ax.set_xlabel("Δt = t_post − t_pre (ms)")
    ax.set_ylabel("Δw per pair (units of the learning rate)")
    ax.set_title(f"Continual spike-trace rule, learning from 0 to "
                 f"{window.attrs['learn_ms']:g} ms (τ_trace {window.attrs['tau_trace_ms']:g} ms)",
                 fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    paths.append(_save(fig, out / "stdp_window.png"))
    return paths


def _save(fig, path: Path) -> Path:
    import matplotlib.pyplot as plt

    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)
    return path


def table(ds: xr.Dataset) -> list[str]:
    lines = ["r_max Hz | free ms | nudged ms | τ_trace ms | spikes/phase at ρ=1 | cosine all "
             "| " + " | ".join(f"cos {p}" for p in ds.param.values)
             + " | accuracy % | rate model % | spikes/sample | ms/sample"]
    for i in ds.setting.values:
        row = ds.sel(setting=i)
        lines.append(
            f"{float(row.r_max):.0f} | {float(row.free_ms):.0f} | {float(row.nudged_ms):.0f} | "
            f"{float(row.tau_trace_ms):.0f} | {float(row.spikes_per_phase_at_rho1):.0f} | "
            f"{float(row.cosine_all):.3f} | "
            + " | ".join(f"{float(c):.3f}" for c in row.cosine.values)
            + f" | {100 * float(row.accuracy):.1f} | {100 * float(row.rate_accuracy):.1f} | "
            f"{float(row.spikes_per_sample):.0f} | {1000 * float(row.seconds_per_sample):.1f}")
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="a 49-16-10 network on 200 digits, three settings, numpy target")
    parser.add_argument("--epochs", type=int, default=3,
                        help="epochs of rate training before the comparison")
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--test", type=int, default=300)
    parser.add_argument("--out", type=Path, default=Path("runs/spiking"))
    args = parser.parse_args(argv)
    from cortex_ep.data import Digits, load_embedded, stratified_indices
    from cortex_ep.model.neurons import Spiking

    digits = load_embedded()
    settings = SETTINGS
    target = "cpp_standalone"
    if args.quick:
        from cortex_ep.model.spec import layered

        net = layered((49, 16, 10), (0.4, 0.05), tau=10.0, dt=5.0, name="quick",
                      init_gain=0.5)
        small = _downsample(digits, 7)
        keep = stratified_indices(small.y_train, 100)
        test = stratified_indices(small.y_test, 50)
        digits = Digits(small.x_train[keep], small.y_train[keep], small.x_test[test],
                        small.y_test[test], small.source)
        settings, target = QUICK_SETTINGS, "numpy"
        args.epochs, args.batch, args.test = min(args.epochs, 1), 10, 10
    else:
        from cortex_ep.models import load as load_model

        net = load_model("two_layer").network()
    args.out.mkdir(parents=True, exist_ok=True)
    W, b = trained_weights(net, digits, args.epochs)
    ds = sweep(net, W, b, digits, settings, args.batch, args.test, target,
               args.out / "build")
    window = stdp_window(Spiking(), np.arange(-40.0, 40.5, 1.0))
    io.write_dataset(ds, args.out / "spiking.nc")
    io.write_dataset(window, args.out / "stdp_window.nc")
    for path in plot(ds, window, args.out):
        print(f"wrote {path}")
    print("\n".join(table(ds)))
    return 0


def _downsample(digits, side: int):
    """Images averaged down to ``side`` × ``side`` pixels (the quick mode's tiny network)."""
    def shrink(x):
        k = 28 // side
        return x.reshape(len(x), side, k, side, k).mean(axis=(2, 4)).reshape(len(x), -1)

    from cortex_ep.data import Digits

    return Digits(shrink(digits.x_train), digits.y_train, shrink(digits.x_test),
                  digits.y_test, digits.source)


if __name__ == "__main__":
    raise SystemExit(main())
