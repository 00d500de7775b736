"""How many spikes EP needs: Poisson and integrate-and-fire units against the rate model.

Martin et al. (2021), "EqSpike: spike-driven equilibrium propagation for
neuromorphic implementations" (arXiv:2010.07859) report 97.6 % on MNIST with
spiking EP; no code is public.  O'Connor, Gavves & Welling (2019, AISTATS)
reach 97.4 % with sigma-delta (integrate-and-fire, reset by subtraction)
units, 784-500-10.  Here the neuron models of :mod:`cortex_ep.model.neurons`
run in the Brian2 engine, side by side.

1. **Weights.**  The rate network of ``models/two_layer.py`` trained for
   ``--epochs`` epochs by the torch twin on the embedded split.
2. **Update cosine** (``spiking.nc``).  For each setting (neuron model,
   plasticity rule and read-out, ``r_max``, phase lengths, membrane options)
   the update of one batch of ``--batch`` training digits, spiking against the
   rate model with the same rule, weights, digits, ``dt`` and phase lengths
   (symmetric estimator, β = 1), per parameter and over all of them.  Under
   the continual rule the rates are the model's × 1e-3, so that the update is
   its small-rate direction.  Beside it: the free-phase accuracy of
   ``--test`` held-out digits with those weights, the hidden units' mean rate,
   the coefficient of variation (CV) of their inter-spike intervals and the
   Fano factor of their counts in 10 ms bins over the second half of the free
   phase (``--probe`` digits; Elephant on Neo spike trains), spikes and seconds
   per sample (the second run of a built binary: no compilation).
3. **Accuracy against r_max** (``--part accuracy``, ``accuracy.nc``).  The
   model's training recipe for each spiking neuron model (``IF_TRAINING``:
   the phase rule on spike counts, symmetric β = 1) for ``--epochs-train``
   epochs on the embedded split at each r_max of ``R_MAX_SWEEP``, one
   checkpointed run per cell under ``OUT/training`` (an interrupted sweep
   resumes), and the held-out accuracy of its last epoch.
4. **STDP window.**  Pre and post spike pairs at a time difference Δt, run
   through the synapse code of the continual spike-trace rule.

Writes ``spiking.nc``, ``spiking_cosine.png``, ``stdp_window.nc``,
``stdp_window.png`` (part ``gradient``), ``accuracy.nc`` and
``spiking_accuracy.png`` (part ``accuracy``) and printed tables.

Usage::

    python analyses/spiking.py [--quick] [--part {gradient,accuracy,all}] [--out runs/spiking]
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import xarray as xr

from cortex_ep import io

#: the estimator of every comparison
ESTIMATOR, BETA = "symmetric", 1.0
#: continual rule: learning rates relative to the model's (the small-rate direction)
RATE_FACTOR = 1e-3
#: r_max of the sweeps (Hz)
R_MAX_SWEEP = (50.0, 100.0, 200.0, 500.0, 1000.0)
#: pre-spike times of the STDP window (ms), relative to a 40 ms learning phase from 0
PRE_SPIKE_TIMES = (-10.0, 10.0, 30.0)


@dataclass(frozen=True)
class Setting:
    """One row of the gradient sweep: a neuron model, its parameters and the rule."""

    neurons: str
    rule: str = "phase"
    params: dict = field(default_factory=dict)
    label: str = ""

    def model(self):
        from cortex_ep.model.neurons import neuron_model

        return neuron_model(self.neurons, **self.params)


def settings(free_ms=100.0, nudged_ms=100.0) -> list[Setting]:
    """The full sweep: spikes per window for both models, read-outs, irregular firing."""
    phases = {"free_ms": free_ms, "nudged_ms": nudged_ms}
    rows = []
    for r_max in R_MAX_SWEEP:
        for neurons in ("spiking", "if"):
            rows.append(Setting(neurons, params={**phases, "r_max_hz": r_max,
                                                 "readout": "count"}, label="counts"))
    rows += [
        Setting("spiking", params={**phases, "readout": "trace"}, label="trace"),
        Setting("if", params={**phases, "readout": "trace"}, label="trace"),
        Setting("if", params={**phases, "membrane": "reset"}, label="membrane reset"),
        Setting("spiking", "continual", {**phases}, label="continual"),
        Setting("if", "continual", {**phases}, label="continual"),
        # the previous Poisson default: 80 ms free, 40 ms nudged, continual trace rule
        Setting("spiking", "continual", {"free_ms": 80.0, "nudged_ms": 40.0},
                label="continual, 80 / 40 ms"),
    ]
    for noise in (0.1, 0.3, 1.0):
        rows.append(Setting("if", params={**phases, "membrane_noise": noise},
                            label=f"noise {noise:g}"))
    rows.append(Setting("if", params={**phases, "membrane_noise": 0.3, "tau_m_ms": 20.0,
                                      "refractory_ms": 2.0},
                        label="LIF: τ_m 20, ref 2, noise 0.3"))
    return rows


def quick_settings() -> list[Setting]:
    """Few spikes first, the most faithful last."""
    phases = {"free_ms": 40.0, "nudged_ms": 20.0, "r_max_hz": 1000.0}
    return [Setting("if", params={**phases, "r_max_hz": 200.0}, label="counts"),
            Setting("spiking", params={**phases, "readout": "count"}, label="counts"),
            Setting("if", params={**phases, "membrane_noise": 0.3}, label="noise 0.3"),
            Setting("if", params=phases, label="counts")]


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


def _engine(net, rule, spikes, target, build_root, dt=None, phases=None):
    from dataclasses import replace

    from cortex_ep import Relaxation
    from cortex_ep.engines.brian.engine import BrianEngine
    from cortex_ep.model.estimators import Estimator
    from cortex_ep.model.plasticity import Plasticity

    est = Estimator(ESTIMATOR, BETA)
    if spikes is None:  # the rate model at the spiking model's dt and phase lengths
        net = replace(net, dt=dt)
        relaxation = Relaxation(free_steps=int(round(phases[0] / dt)),
                                nudged_steps=int(round(phases[1] / dt)))
    else:
        relaxation = Relaxation()
    return BrianEngine(net, est, relaxation, target=target, build_root=build_root,
                       plasticity=Plasticity(rule), spikes=spikes), est


def measure(net, W, b, batch, test, probe, rule, spikes, target, build_root, dt=None,
            phases=None) -> dict:
    """One setting (or, with ``spikes`` None, the rate model): the update over the
    batch, the held-out accuracy, time per sample, and for spikes their statistics."""
    from cortex_ep.engines.brian.engine import concat, make_schedule

    engine, est = _engine(net, rule, spikes, target, build_root, dt, phases)
    x, d = batch
    x_test, y_test = test
    schedule = concat(make_schedule(x, d, est, batch_size=len(x)),
                      make_schedule(x_test, np.zeros((len(x_test), net.output.size)), est,
                                    learn=False))
    engine.run(schedule, W, b)  # builds (standalone) and warms up
    start = time.perf_counter()
    res = engine.run(schedule, W, b)
    seconds = time.perf_counter() - start
    before = flat(net, W, b)
    out = {"update": {k: v - before[k] for k, v in flat(net, res.W, res.b).items()},
           "accuracy": float(np.mean(res.free_output[len(x):].argmax(1) == y_test)),
           "seconds_per_sample": seconds / schedule.n}
    if spikes is not None:
        out.update(spike_statistics(engine, net, W, b, probe, spikes))
    return out


def spike_statistics(engine, net, W, b, probe, spikes) -> dict:
    """Spikes per sample, and of the hidden units over the second half of the free
    phase, by Elephant on Neo spike trains: mean rate (Hz), mean CV of inter-spike
    intervals and mean Fano factor of counts in 10 ms bins (units with ≥ 3 spikes)."""
    from cortex_ep.recordings import spiketrains, traces

    x, d = probe
    states = engine.record(W, b, x, d, np.ones(len(x)))
    total = sum(len(v) for k, v in states.items() if isinstance(k, tuple))
    phases = engine.plasticity.phases(engine.estimator)
    recorded = traces.spike_variables(states, net, spikes.free_steps, spikes.nudged_steps,
                                      phases, np.arange(len(x))).assign_coords(
        phase=list(phases), **traces.unit_coords(net))
    durations = {p: (spikes.free_steps if p == "free" else spikes.nudged_steps) * spikes.dt_ms
                 for p in phases}
    hidden = [p.name for p in net.dynamic if p.role == "hidden"]
    trains = [t for t in spiketrains.spike_trains(
        recorded, "free", t_start_ms=(spikes.free_steps // 2) * spikes.dt_ms,
        t_stop_ms=spikes.free_steps * spikes.dt_ms, durations_ms=durations)
        if t.annotations["population"] in hidden]
    stats = spiketrains.statistics(trains)
    return {"spikes_per_sample": total / len(x), "hidden_rate_hz": stats["rate_hz"],
            "hidden_cv": stats["cv"], "hidden_fano": stats["fano"]}


def sweep(net, W, b, digits, rows, batch: int, n_test: int, n_probe: int, target,
          build_root, log=print) -> xr.Dataset:
    from cortex_ep.data import one_hot, stratified_indices
    from cortex_ep.model.spec import with_learning_rates

    train, test = (stratified_indices(digits.y_train, batch),
                   stratified_indices(digits.y_test, n_test))
    batch_ = (digits.x_train[train], one_hot(digits.y_train[train], net.output.size))
    test_ = (digits.x_test[test], digits.y_test[test])
    probe = (digits.x_test[test[:n_probe]], one_hot(digits.y_test[test[:n_probe]],
                                                     net.output.size))
    nets = {"phase": net,
            "continual": with_learning_rates(net, [RATE_FACTOR * p.lr
                                                   for p in net.projections])}
    rate_runs, records = {}, []
    for row in rows:
        spikes = row.model()
        key = (row.rule, spikes.dt_ms, spikes.free_ms, spikes.nudged_ms)
        if key not in rate_runs:
            rate_runs[key] = measure(nets[row.rule], W, b, batch_, test_, probe, row.rule,
                                     None, target, build_root, spikes.dt_ms,
                                     (spikes.free_ms, spikes.nudged_ms))
        rate = rate_runs[key]
        got = measure(nets[row.rule], W, b, batch_, test_, probe, row.rule, spikes, target,
                      build_root)
        names = list(got["update"])
        cos = [cosine(got["update"][k], rate["update"][k]) for k in names]
        total = cosine(np.concatenate([got["update"][k] for k in names]),
                       np.concatenate([rate["update"][k] for k in names]))
        records.append(dict(row=row, spikes=spikes, cos=cos, total=total, rate=rate, **got))
        log(f"{spikes.name:7s} {row.rule:9s} {spikes.readout:5s} {row.label:32s} "
            f"r_max {spikes.r_max_hz:5.0f} Hz, {spikes.free_ms:.0f}/{spikes.nudged_ms:.0f} ms: "
            f"cosine {' '.join(f'{c:.3f}' for c in cos)} (all {total:.3f}), accuracy "
            f"{100 * got['accuracy']:.1f}% (rate {100 * rate['accuracy']:.1f}%), hidden "
            f"{got['hidden_rate_hz']:.0f} Hz CV {got['hidden_cv']:.2f} "
            f"Fano {got['hidden_fano']:.2f}, "
            f"{1000 * got['seconds_per_sample']:.2f} ms/sample "
            f"(rate {1000 * rate['seconds_per_sample']:.2f})")
    return xr.Dataset(
        {"cosine": (("setting", "param"), np.array([r["cos"] for r in records]),
                    {"long_name": "cosine of the spiking to the rate model's update"}),
         "cosine_all": ("setting", [r["total"] for r in records]),
         "accuracy": ("setting", [r["accuracy"] for r in records],
                      {"long_name": "free-phase accuracy of the spiking network"}),
         "rate_accuracy": ("setting", [r["rate"]["accuracy"] for r in records],
                           {"long_name": "free-phase accuracy of the rate model, same phases"}),
         "spikes_per_sample": ("setting", [r["spikes_per_sample"] for r in records],
                               {"units": "1"}),
         "hidden_rate": ("setting", [r["hidden_rate_hz"] for r in records], {"units": "Hz"}),
         "hidden_cv": ("setting", [r["hidden_cv"] for r in records],
                       {"long_name": "mean CV of the hidden units' inter-spike intervals"}),
         "hidden_fano": ("setting", [r["hidden_fano"] for r in records],
                         {"long_name": "mean Fano factor of the hidden units' spike counts "
                                       "in 10 ms bins"}),
         "seconds_per_sample": ("setting", [r["seconds_per_sample"] for r in records],
                                {"units": "s"}),
         "rate_seconds_per_sample": ("setting",
                                     [r["rate"]["seconds_per_sample"] for r in records],
                                     {"units": "s"})},
        coords={"setting": np.arange(len(records)), "param": names,
                "neurons": ("setting", [r["spikes"].name for r in records]),
                "rule": ("setting", [r["row"].rule for r in records]),
                "readout": ("setting", [r["spikes"].readout if r["row"].rule == "phase"
                                        else "trace" for r in records],
                            {"long_name": "what the rule reads (the continual rule: traces)"}),
                "label": ("setting", [r["row"].label for r in records]),
                "r_max": ("setting", [r["spikes"].r_max_hz for r in records], {"units": "Hz"}),
                "free_ms": ("setting", [r["spikes"].free_ms for r in records], {"units": "ms"}),
                "nudged_ms": ("setting", [r["spikes"].nudged_ms for r in records],
                              {"units": "ms"}),
                "spikes_per_window": ("setting",
                                      [r["spikes"].spikes_per_window() for r in records],
                                      {"long_name": "r_max · T_nudged: spikes per nudged "
                                                    "window at ρ = 1"})},
        attrs={"batch": batch, "test_digits": n_test, "probe_digits": n_probe,
               "network": net.describe(), "estimator": ESTIMATOR, "beta": BETA,
               "continual_learning_rate_factor": RATE_FACTOR})


def accuracy_sweep(model_name, digits, out: Path, r_maxes, epochs: int, neurons=("spiking",
                   "if"), log=print) -> xr.Dataset:
    """The model's spiking recipe at each r_max; one resumable run per cell."""
    from cortex_ep import models
    from cortex_ep.learning import checkpoint
    from cortex_ep.learning.loop import TrainConfig, train
    from cortex_ep.model.estimators import Estimator
    from cortex_ep.model.neurons import neuron_model
    from cortex_ep.model.spec import with_learning_rates

    module = models.load(model_name)
    recipe = module.IF_TRAINING
    net = with_learning_rates(module.network(),
                              models.tuned_learning_rates(module, "brian", recipe["plasticity"],
                                                          "if", recipe["beta"]))
    accuracy = np.full((len(neurons), len(r_maxes)), np.nan)
    for i, kind in enumerate(neurons):
        for j, r_max in enumerate(r_maxes):
            # the same training for both models: the integrate-and-fire recipe
            spikes = neuron_model(kind, **{**module.IF, "r_max_hz": r_max,
                                           "readout": "count"})
            config = TrainConfig(epochs=epochs, engine="brian", seed=0, spiking=spikes,
                                 estimator=Estimator(recipe["estimator"], recipe["beta"]),
                                 plasticity=recipe["plasticity"])
            cell = out / f"{kind}_{r_max:g}Hz"
            try:
                io.check_free(cell / io.LOCK_NAME, str(cell), "")
            except io.DirectoryInUse:
                log(f"{kind:7s} r_max {r_max:5.0f} Hz: another process trains {cell}; "
                    "skipped (run the part again once it is done)")
                continue
            done = 0
            if (cell / checkpoint.FILENAME).exists():
                done = int(checkpoint.load(cell).epoch)
            start = time.perf_counter()
            if done < epochs:
                # the whole curve: a cell whose units fall silent warns and goes on
                history, _, _ = train(net, digits, config, out=cell, resume=done > 0,
                                      progress=False, on_divergence="warn")
            else:
                history = io.read_dataset(cell / "history.nc")
            accuracy[i, j] = float(history.test_accuracy[-1])
            log(f"{kind:7s} r_max {r_max:5.0f} Hz: {100 * accuracy[i, j]:.1f}% after {epochs} "
                f"epochs ({time.perf_counter() - start:.0f} s this call)")
    return xr.Dataset(
        {"accuracy": (("neurons", "r_max"), accuracy,
                      {"long_name": "held-out accuracy after training"})},
        coords={"neurons": list(neurons), "r_max": ("r_max", list(r_maxes), {"units": "Hz"})},
        attrs={"epochs": epochs, "network": net.describe(), "split": digits.source,
               **{f"recipe_{k}": v for k, v in recipe.items()},
               **{f"phases_{k}": v for k, v in module.IF.items()}})


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
            threshold="k == spike_step", reset="x += trace_jump",
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


def plot_gradient(ds: xr.Dataset, out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(13, 10))
    grid = fig.add_gridspec(2, 2, height_ratios=(1, 1.2))
    axes = [fig.add_subplot(grid[0, 0]), fig.add_subplot(grid[0, 1]),
            fig.add_subplot(grid[1, :])]
    counts = ds.where(ds.label == "counts", drop=True)
    first = str(ds.param.values[0])
    for neurons, marker, name, color in (("spiking", "o", "Poisson", "C0"),
                                         ("if", "s", "integrate-and-fire", "C1")):
        part = counts.where(counts.neurons == neurons, drop=True)
        if part.sizes.get("setting", 0) == 0:
            continue
        order = np.argsort(part.spikes_per_window.values)
        part = part.isel(setting=order)
        for param, style in ((first, "-"), (str(ds.param.values[-1]), ":")):
            axes[0].plot(part.spikes_per_window, part.cosine.sel(param=param), style,
                         marker=marker, color=color, label=f"{name}, {param}")
        axes[1].plot(part.spikes_per_window, 100 * part.accuracy, marker=marker, color=color,
                     label=name)
    axes[1].plot(counts.spikes_per_window, 100 * counts.rate_accuracy, "k+", ms=10,
                 label="rate model, same weights and phases")
    for ax in axes[:2]:
        ax.set_xscale("log")
        ax.set_xlabel("spikes per nudged window at ρ = 1 (r_max · T_nudged)")
        ax.legend(fontsize=8)
    axes[0].axhline(0.9, color="grey", lw=0.5)
    axes[0].set_ylabel("cosine(spiking update, rate update)")
    axes[0].set_ylim(min(0.0, float(ds.cosine.min()) - 0.05), 1)
    axes[1].set_ylabel("held-out accuracy with the same weights (%)")
    # the settings that the model, rule, read-out, rate and phases already name
    plain = ("counts", "trace", "continual", "continual, 80 / 40 ms")
    # the continual rule reads traces whatever the read-out
    labels = [f"{'IF' if n == 'if' else 'Poisson'}, {rule} rule, "
              f"{readout if rule == 'phase' else 'trace'}s, {r_max:g} Hz, "
              f"{free:g}/{nudged:g} ms" + ("" if label in plain else f", {label}")
              for n, rule, readout, label, r_max, free, nudged in zip(
                  ds.neurons.values, ds.rule.values, ds.readout.values, ds.label.values,
                  ds.r_max.values, ds.free_ms.values, ds.nudged_ms.values)]
    y = np.arange(len(labels))
    cos_first = ds.cosine.sel(param=first).values
    axes[2].barh(y, cos_first, color=["C1" if n == "if" else "C0" for n in ds.neurons.values])
    for i, cv in enumerate(ds.hidden_cv.values):
        axes[2].text(max(cos_first[i], 0) + 0.02, i, f"CV {cv:.2f}", va="center", fontsize=7)
    axes[2].set_yticks(y, labels, fontsize=7)
    axes[2].set_xlabel(f"cosine of {first}")
    axes[2].set_xlim(min(0.0, float(ds.cosine.sel(param=first).min())), 1)
    axes[2].invert_yaxis()
    fig.suptitle(f"Spiking EP against the rate model ({ds.attrs['network']}, "
                 f"{ds.attrs['estimator']} β = {ds.attrs['beta']:g}, batch of "
                 f"{ds.attrs['batch']})")
    fig.tight_layout()
    return _save(fig, out / "spiking_cosine.png")


def plot_window(window: xr.Dataset, out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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
    return _save(fig, out / "stdp_window.png")


def plot_accuracy(ds: xr.Dataset, out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for neurons, marker, name in (("spiking", "o", "Poisson"),
                                  ("if", "s", "integrate-and-fire")):
        if neurons in ds.neurons.values:
            ax.plot(ds.r_max, 100 * ds.accuracy.sel(neurons=neurons), marker=marker,
                    label=name)
    ax.axhline(93, color="grey", lw=0.5)
    ax.set_xscale("log")
    ax.set_xlabel("r_max (Hz)")
    ax.set_ylabel("held-out accuracy (%)")
    ax.set_title(f"{ds.attrs['network']}, {ds.attrs['epochs']} epochs, "
                 f"{ds.attrs['split']} split", fontsize=9)
    ax.legend()
    fig.tight_layout()
    return _save(fig, out / "spiking_accuracy.png")


def _save(fig, path: Path) -> Path:
    import matplotlib.pyplot as plt

    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)
    return path


def table(ds: xr.Dataset) -> list[str]:
    params = [str(p) for p in ds.param.values]
    lines = ["neurons | rule | read-out | setting | r_max Hz | free/nudged ms | "
             "spikes/phase at ρ=1 (free / nudged) | " + " | ".join(f"cos {p}" for p in params)
             + " | accuracy % | rate model % | hidden Hz | CV | Fano | ms/sample (rate)"]
    for i in ds.setting.values:
        row = ds.sel(setting=i)
        lines.append(
            f"{row.neurons.item()} | {row.rule.item()} | {row.readout.item()} | "
            f"{row.label.item()} | {float(row.r_max):.0f} | {float(row.free_ms):.0f}/"
            f"{float(row.nudged_ms):.0f} | {float(row.r_max * row.free_ms) / 1000:.0f} / "
            f"{float(row.spikes_per_window):.0f} | "
            + " | ".join(f"{float(c):.3f}" for c in row.cosine.values)
            + f" | {100 * float(row.accuracy):.1f} | {100 * float(row.rate_accuracy):.1f} | "
            f"{float(row.hidden_rate):.0f} | {float(row.hidden_cv):.2f} | "
            f"{float(row.hidden_fano):.2f} | {1000 * float(row.seconds_per_sample):.2f} "
            f"({1000 * float(row.rate_seconds_per_sample):.2f})")
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="a 49-16-10 network on 200 digits, three settings, numpy target")
    parser.add_argument("--part", choices=("gradient", "accuracy", "all"), default="gradient")
    parser.add_argument("--epochs", type=int, default=3,
                        help="epochs of rate training before the gradient comparison")
    parser.add_argument("--epochs-train", type=int, default=10,
                        help="epochs of spiking training per r_max (part accuracy)")
    parser.add_argument("--neurons", choices=("spiking", "if"), nargs="+",
                        default=["spiking", "if"],
                        help="the neuron models of part accuracy (one process each can "
                             "share an --out; a last run over both writes the whole table)")
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--test", type=int, default=300)
    parser.add_argument("--probe", type=int, default=20,
                        help="held-out digits whose spikes give rates and CVs")
    parser.add_argument("--out", type=Path, default=Path("runs/spiking"))
    args = parser.parse_args(argv)
    for name in ("epochs", "epochs_train", "batch", "test", "probe"):
        if getattr(args, name) < (0 if name == "epochs" else 1):
            parser.error(f"--{name.replace('_', '-')} {getattr(args, name)}: give a "
                         "positive number")
    from cortex_ep.data import Digits, load_embedded, stratified_indices
    from cortex_ep.model.neurons import Spiking

    digits = load_embedded()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.part in ("gradient", "all"):
        with io.exclusive(args.out / io.LOCK_NAME, f"analysis directory {args.out}",
                          "wait for it to finish or choose another --out"):
            rows, target = settings(), "cpp_standalone"
            if args.quick:
                from cortex_ep.model.spec import layered

                net = layered((49, 16, 10), (0.4, 0.05), tau=10.0, dt=5.0, name="quick",
                              init_gain=0.5)
                small = _downsample(digits, 7)
                keep = stratified_indices(small.y_train, 100)
                test = stratified_indices(small.y_test, 50)
                digits = Digits(small.x_train[keep], small.y_train[keep],
                                small.x_test[test], small.y_test[test], small.source)
                rows, target = quick_settings(), "numpy"
                args.epochs, args.batch, args.test, args.probe = min(args.epochs, 1), 10, 10, 4
            else:
                from cortex_ep.models import load as load_model

                net = load_model("two_layer").network()
            W, b = trained_weights(net, digits, args.epochs)
            ds = sweep(net, W, b, digits, rows, args.batch, args.test, args.probe, target,
                       args.out / "build")
            window = stdp_window(Spiking(), np.arange(-40.0, 40.5, 1.0))
            io.write_dataset(ds, args.out / "spiking.nc")
            io.write_dataset(window, args.out / "stdp_window.nc")
            for path in (plot_gradient(ds, args.out), plot_window(window, args.out)):
                print(f"wrote {path}")
            print("\n".join(table(ds)))
    if args.part in ("accuracy", "all"):
        ds = accuracy_sweep("two_layer", load_embedded(), args.out / "training",
                            R_MAX_SWEEP, args.epochs_train, tuple(args.neurons))
        if not ds.accuracy.isnull().any():  # a partial table stays in the log only
            io.write_dataset(ds, args.out / "accuracy.nc")
            print(f"wrote {plot_accuracy(ds, args.out)}")
        print("neurons | " + " | ".join(f"{r:g} Hz" for r in ds.r_max.values))
        for neurons in ds.neurons.values:
            print(f"{neurons} | " + " | ".join(
                f"{100 * a:.1f}" for a in ds.accuracy.sel(neurons=neurons).values))
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
