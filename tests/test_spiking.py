"""Spiking neurons in Brian2: the rate limit, the spike-trace rule by hand, determinism,
and agreement with the rate model's update."""

import numpy as np
import pytest

from cortex_ep import Relaxation, data
from cortex_ep.engines import reference
from cortex_ep.engines.brian.engine import BrianEngine, make_schedule
from cortex_ep.model import energy
from cortex_ep.model.estimators import Estimator
from cortex_ep.model.neurons import Spiking, from_options, neuron_model
from cortex_ep.model.plasticity import Plasticity
from cortex_ep.model.spec import layered


@pytest.fixture
def small_net():
    return layered([6, 5, 3], [0.4, 0.2], tau=10.0, dt=5.0, name="tiny")


def _params(net, seed=1, scale=1.5):
    W, b = energy.init_params(net, seed)
    W = {k: scale * v for k, v in W.items()}
    b = {k: v + 0.3 for k, v in b.items()}  # units in the linear range fire
    return W, b


def _rate_fixed_point(net, W, b, x):
    s = {p.name: np.zeros((len(x), p.size)) for p in net.dynamic}
    s[net.input.name] = x
    rel = Relaxation(free_steps=400)
    out = reference.relax(net, s, W, b, 400, relaxation=rel)
    return np.concatenate([energy.get_activation("hard_sigmoid").rho(out[p.name])
                           for p in net.dynamic], axis=1)


def _free_rates(net, W, b, x, spikes, window_ms, tmp_path):
    """Spike counts of the last ``window_ms`` of the free phase over r_max·window."""
    est = Estimator("one-sided", 0.5)
    engine = BrianEngine(net, est, Relaxation(), target="numpy", build_root=tmp_path,
                         spikes=spikes, seed=2)
    sched = make_schedule(x, np.zeros((len(x), net.output.size)), est, learn=False)
    states = engine.run(sched, W, b, record=True).states
    first = spikes.free_steps - int(round(window_ms / spikes.dt_ms))
    offsets = np.cumsum([0] + [p.size for p in net.dynamic])
    counts = np.zeros((len(x), offsets[-1]))
    for k, pop in enumerate(net.dynamic):
        sample, step, unit = states[("spikes", pop.name)].T
        keep = (step >= first) & (step < spikes.free_steps)
        np.add.at(counts, (sample[keep], unit[keep] + offsets[k]), 1)
    return counts / (spikes.r_max_hz * window_ms / 1000.0)


def _fixed_point_case(net):
    """Weights, two inputs and the rate model's fixed-point rates, in the linear range."""
    W, b = _params(net)
    x = np.random.default_rng(0).uniform(0, 1, (2, 6))
    target = _rate_fixed_point(net, W, b, x)
    assert 0.1 < target.mean() < 0.9
    return W, b, x, target


def test_free_rates_reach_the_rate_fixed_point_as_spikes_grow(small_net, tmp_path):
    """Mean rates at the end of the free phase → ρ(s*) with an error ~ 1/√(spikes)."""
    net = small_net
    W, b, x, target = _fixed_point_case(net)
    errors = {}
    for r_max in (100.0, 1600.0):
        spikes = Spiking(r_max_hz=r_max, dt_ms=0.25, free_ms=300.0, nudged_ms=5.0)
        window = 200.0
        rates = _free_rates(net, W, b, x, spikes, window, tmp_path / str(r_max))
        expected_spikes = r_max * window / 1000.0 * np.maximum(target, 0.05)
        errors[r_max] = np.sqrt(np.mean((rates - target) ** 2 * expected_spikes))
        # a unit's relative error is within a few Poisson standard deviations
        tolerance = 3.0 / np.sqrt(r_max * window / 1000.0 * target.mean())
        assert np.abs(rates - target).mean() < tolerance * target.mean() + 0.02, r_max
    # measured in units of 1/√(spikes), the error does not grow with the spike count
    assert errors[1600.0] < 2.0 * errors[100.0]
    assert errors[1600.0] < 3.0


def _trace(spike_steps, n_steps, dt, tau, jump):
    """The plasticity trace after every step: Euler decay, then this step's jump."""
    x = np.zeros(n_steps)
    value = 0.0
    spiking = np.zeros(n_steps, bool)
    spiking[spike_steps] = True
    for k in range(n_steps):
        value = value * (1 - dt / tau) + (jump if spiking[k] else 0.0)
        x[k] = value
    return x


def test_continual_spike_trace_rule_equals_hand_computation(small_net, tmp_path):
    check_continual_trace_rule(small_net, Spiking(r_max_hz=400.0, dt_ms=0.5, free_ms=30.0,
                                                  nudged_ms=10.0), tmp_path)


def check_continual_trace_rule(net, spikes, tmp_path):
    """The continual rule's update of a one-sided sample against the spike traces
    recomputed by hand from the recorded spikes (any spiking neuron model)."""
    W, b = _params(net)
    x = np.random.default_rng(3).uniform(0, 1, (1, 6))
    d = data.one_hot(np.array([1]), 3)
    est = Estimator("one-sided", 0.5)
    engine = BrianEngine(net, est, Relaxation(), target="numpy", build_root=tmp_path,
                         spikes=spikes, plasticity=Plasticity("continual"), seed=5)
    res = engine.run(make_schedule(x, d, est), W, b, record=True)
    n_steps = engine.steps_per_sample
    start, end = spikes.free_steps - 1, n_steps - 1  # traces before and after learning
    traces = {}
    for pop in net.dynamic:
        _, step, unit = res.states[("spikes", pop.name)].T
        traces[pop.name] = np.stack([
            _trace(step[unit == j], n_steps, spikes.dt_ms, spikes.tau_trace_ms,
                   spikes.trace_jump) for j in range(pop.size)], axis=1)
    assert sum(len(v) for k, v in res.states.items() if isinstance(k, tuple)) > 20
    scale = 1.0 / est.beta
    for proj in net.projections:
        post = traces[proj.post]
        if net[proj.pre].role == "input":
            pre_start = pre_end = energy.get_activation("hard_sigmoid").rho(x[0])
        else:
            pre_start, pre_end = traces[proj.pre][start], traces[proj.pre][end]
        expected = proj.lr * scale * (np.outer(pre_end, post[end])
                                      - np.outer(pre_start, post[start]))
        np.testing.assert_allclose(res.W[proj.name] - W[proj.name], expected,
                                   rtol=1e-9, atol=1e-12)
    for pop in net.dynamic:
        expected = net.bias_lr(pop.name) * scale * (traces[pop.name][end]
                                                    - traces[pop.name][start])
        np.testing.assert_allclose(res.b[pop.name] - b[pop.name], expected, atol=1e-12)


def test_same_seed_same_spiking_run(small_net, tmp_path):
    net = small_net
    W, b = _params(net)
    rng = np.random.default_rng(4)
    x, d = rng.uniform(0, 1, (3, 6)), data.one_hot(rng.integers(0, 3, 3), 3)
    est = Estimator("random-sign", 0.5)
    spikes = Spiking(r_max_hz=400.0, free_ms=20.0, nudged_ms=10.0)

    def run(seed):
        engine = BrianEngine(net, est, Relaxation(), target="numpy", build_root=tmp_path,
                             spikes=spikes, plasticity=Plasticity("continual"), seed=seed)
        return engine.run(make_schedule(x, d, est, signs=np.array([1.0, -1.0, 1.0]),
                                        batch_size=3), W, b)

    first, again, other = run(0), run(0), run(1)
    for k in W:
        np.testing.assert_array_equal(first.W[k], again.W[k])
    np.testing.assert_array_equal(first.free_output, again.free_output)
    assert any(not np.array_equal(first.W[k], other.W[k]) for k in W)


def test_spiking_and_rate_updates_agree_in_sign_where_large(small_net, tmp_path):
    """Many spikes per phase: every large rate-model update has the spiking update's sign."""
    net = small_net
    W, b = _params(net)
    rng = np.random.default_rng(6)
    # two digits, each four times in the batch: the batch average halves the spike noise
    x, y = np.repeat(rng.uniform(0, 1, (2, 6)), 4, axis=0), np.repeat([0, 2], 4)
    d = data.one_hot(y, 3)
    est = Estimator("one-sided", 1.0)
    rel = Relaxation(free_steps=40, nudged_steps=20)
    spikes = Spiking(r_max_hz=2000.0, dt_ms=0.25, free_ms=100.0, nudged_ms=100.0,
                     tau_trace_ms=50.0)
    updates = {}
    for name, model in (("rate", None), ("spiking", spikes)):
        engine = BrianEngine(net, est, rel, target="numpy", build_root=tmp_path / name,
                             spikes=model, seed=7)
        res = engine.run(make_schedule(x, d, est, batch_size=len(x)), W, b)
        updates[name] = np.concatenate([(res.W[p.name] - W[p.name]).ravel()
                                        for p in net.projections])
    rate, spiking = updates["rate"], updates["spiking"]
    large = np.abs(rate) > 0.5 * np.abs(rate).max()
    assert large.sum() >= 3
    np.testing.assert_array_equal(np.sign(spiking[large]), np.sign(rate[large]))


def test_spiking_parameters_are_checked():
    with pytest.raises(ValueError, match="r_max_hz = -1"):
        Spiking(r_max_hz=-1)
    with pytest.raises(ValueError, match="whole number of dt"):
        Spiking(free_ms=10.25, dt_ms=0.5)
    with pytest.raises(ValueError, match="probability above 1"):
        Spiking(r_max_hz=5000, dt_ms=0.5)
    with pytest.raises(ValueError, match="need --neurons spiking"):
        from_options("rate", r_max_hz=100.0)
    with pytest.raises(ValueError, match="unknown neuron model 'lif'"):
        neuron_model("lif")
    assert from_options("rate") is None
    assert from_options("spiking", free_ms=50.0).free_steps == 100


def test_spiking_run_records_spikes_that_open_run_loads(tmp_path):
    """train → traces with spike counts and spike times in the recordings' vocabulary (cortex_ep.recordings.traces)."""
    from cortex_ep.learning.loop import TrainConfig, train
    from cortex_ep.recordings.run import open_run

    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (30, 16))
    y = np.arange(30) % 10
    digits = data.Digits(x[:20], y[:20], x[20:], y[20:], "synthetic")
    net = layered([16, 8, 10], [0.1, 0.05], tau=10.0, dt=5.0, name="small")
    spikes = Spiking(r_max_hz=500.0, free_ms=60.0, nudged_ms=5.0)
    config = TrainConfig(epochs=2, batch_size=5, engine="brian", target="numpy",
                         plasticity="continual", spiking=spikes)
    history, _, _ = train(net, digits, config, out=tmp_path, record=2, progress=False,
                          record_epochs=(1, 2))
    assert history.attrs["neurons"] == "spiking" and history.attrs["free_steps"] == 120
    run = open_run(tmp_path, chunks=False)
    traces = run.traces
    assert traces.attrs["spike_r_max_hz"] == 500.0 and traces.time.attrs["units"] == "ms"
    counts = traces.spike_count
    assert counts.dims == ("epoch", "sample", "phase", "time", "unit")
    assert float(traces.time[1]) == 0.5
    for epoch in (1, 2):
        one = traces.sel(epoch=epoch)
        real = np.isfinite(one.spike_time.values)
        assert int(counts.sel(epoch=epoch).sum()) == real.sum() > 0
        # every listed spike is counted in its sample, phase, time bin and unit
        first = int(np.flatnonzero(real)[0])
        spike = one.isel(spike=first)
        bin_ = counts.sel(epoch=epoch, sample=int(spike.spike_sample),
                          phase=str(spike.spike_phase.values),
                          time=float(spike.spike_time)).isel(unit=int(spike.spike_unit))
        assert int(bin_) >= 1
        assert set(one.spike_phase.values[real]) <= {"free", "nudged"}
