"""Integrate-and-fire neurons in Brian2 (numpy target, small nets): the count tracks
the rate integral within one spike, the rates reach the rate model's fixed point,
the count and trace rules by hand from recorded spikes, determinism, and bad
parameters refused before any build."""

import numpy as np
import pytest
from test_spiking import (
    _fixed_point_case,
    _free_rates,
    _params,
    _trace,
    check_continual_trace_rule,
)

from cortex_ep import Relaxation, data
from cortex_ep.engines.brian.engine import BrianEngine, make_schedule
from cortex_ep.model import energy
from cortex_ep.model.estimators import Estimator
from cortex_ep.model.neurons import IntegrateAndFire, from_options, neuron_model
from cortex_ep.model.plasticity import Plasticity
from cortex_ep.model.spec import layered


@pytest.fixture
def small_net():
    return layered([6, 5, 3], [0.4, 0.2], tau=10.0, dt=5.0, name="tiny")


def _recorded(net, W, b, x, d, spikes, est, tmp_path, plasticity="phase", seed=5):
    engine = BrianEngine(net, est, Relaxation(), target="numpy", build_root=tmp_path,
                         spikes=spikes, plasticity=Plasticity(plasticity), seed=seed)
    return engine, engine.run(make_schedule(x, d, est, batch_size=len(x)), W, b, record=True)


def _counts(res, pop, sample, first, last):
    """Spikes of each unit of ``pop`` at the steps ``first … last − 1`` of ``sample``."""
    k, step, unit = res.states[("spikes", pop.name)].T
    keep = (k == sample) & (step >= first) & (step < last)
    return np.bincount(unit[keep], minlength=pop.size).astype(float)


def test_count_stays_within_one_spike_of_the_rate_integral(small_net, tmp_path):
    """Over every window of the free and the +β phase (the membrane carries over),
    |count − ∫ r_max ρ dt| < 1; the membrane at step k integrates ρ of step k − 1."""
    net = small_net
    W, b = _params(net)
    x = np.random.default_rng(0).uniform(0, 1, (2, 6))
    d = data.one_hot(np.array([0, 2]), 3)
    spikes = IntegrateAndFire(r_max_hz=300.0, dt_ms=0.5, free_ms=40.0, nudged_ms=20.0)
    est = Estimator("symmetric", 1.0)
    _, res = _recorded(net, W, b, x, d, spikes, est, tmp_path)
    steps = spikes.free_steps + spikes.nudged_steps
    rho = energy.get_activation("hard_sigmoid").rho
    checked = 0
    for pop in net.dynamic:
        for sample in range(len(x)):
            s = res.states[pop.name][sample, :steps]
            drive = np.cumsum(np.vstack([np.zeros(pop.size), rho(s[:-1])]), axis=0) \
                * spikes.r_max_hz * spikes.dt_ms / 1000.0
            n = np.zeros((steps, pop.size))
            k, step, unit = res.states[("spikes", pop.name)].T
            keep = (k == sample) & (step < steps)
            np.add.at(n, (step[keep], unit[keep]), 1)
            count = np.cumsum(n, axis=0)
            # every window (i, j]: both ends over all steps
            error = (drive - count)[:, None, :] - (drive - count)[None, :, :]
            assert np.abs(error).max() < 1.0 + 1e-9
            checked += int(count[-1].sum())
    assert checked > 100


def test_if_rates_reach_the_rate_fixed_point_as_spikes_grow(small_net, tmp_path):
    """The window count over r_max·T → ρ(s*), its error bounded by 1 / (r_max T)."""
    net = small_net
    W, b, x, target = _fixed_point_case(net)
    errors = {}
    window = 200.0
    for r_max in (50.0, 400.0, 3200.0):
        spikes = IntegrateAndFire(r_max_hz=r_max, dt_ms=0.25, free_ms=300.0, nudged_ms=5.0)
        rates = _free_rates(net, W, b, x, spikes, window, tmp_path / str(r_max))
        errors[r_max] = np.abs(rates - target).max()
        # within one spike, plus what is left of the relaxation and the synaptic ripple
        assert errors[r_max] < 1.0 / (r_max * window / 1000.0) + 0.01, r_max
    assert errors[3200.0] < errors[400.0] < errors[50.0]
    assert errors[3200.0] < 0.01


def _window_rates(res, net, spikes, sample, first):
    rates = {}
    for pop in net.dynamic:
        rates[pop.name] = _counts(res, pop, sample, first, first + spikes.nudged_steps) \
            * spikes.count_scale
    return rates


@pytest.mark.parametrize("estimator", ["symmetric", "one-sided"])
def test_count_rule_equals_hand_computation(small_net, tmp_path, estimator):
    """The phase rule on spike counts: windows of T_nudge (the +β phase, and the −β
    phase or the free phase's last T_nudge), recounted from the recorded spikes."""
    net = small_net
    W, b = _params(net)
    x = np.random.default_rng(3).uniform(0, 1, (2, 6))
    d = data.one_hot(np.array([1, 2]), 3)
    spikes = IntegrateAndFire(r_max_hz=2000.0, dt_ms=0.25, free_ms=40.0, nudged_ms=20.0)
    est = Estimator(estimator, 1.0)
    _, res = _recorded(net, W, b, x, d, spikes, est, tmp_path)
    T1, T2 = spikes.free_steps, spikes.nudged_steps
    rho_x = energy.get_activation("hard_sigmoid").rho(x)
    factor = 1.0 / (2 * est.beta) if estimator == "symmetric" else 1.0 / est.beta
    dW = {p.name: 0.0 for p in net.projections}
    db = {p.name: 0.0 for p in net.dynamic}
    for sample in range(len(x)):
        a = _window_rates(res, net, spikes, sample, T1)
        bb = _window_rates(res, net, spikes, sample,
                           T1 + T2 if estimator == "symmetric" else T1 - T2)
        a[net.input.name] = bb[net.input.name] = rho_x[sample]
        for proj in net.projections:
            dW[proj.name] = dW[proj.name] + factor * (np.outer(a[proj.pre], a[proj.post])
                                                      - np.outer(bb[proj.pre], bb[proj.post]))
        for pop in net.dynamic:
            db[pop.name] = db[pop.name] + factor * (a[pop.name] - bb[pop.name])
    assert sum(len(v) for k, v in res.states.items() if isinstance(k, tuple)) > 50
    for proj in net.projections:
        np.testing.assert_allclose(res.W[proj.name] - W[proj.name],
                                   proj.lr * dW[proj.name] / len(x), rtol=1e-9, atol=1e-13)
        assert np.abs(dW[proj.name]).max() > 0
    for pop in net.dynamic:
        np.testing.assert_allclose(res.b[pop.name] - b[pop.name],
                                   net.bias_lr(pop.name) * db[pop.name] / len(x), atol=1e-13)


def test_phase_rule_on_traces_restarts_them_with_the_state(small_net, tmp_path):
    """Symmetric phase rule reading traces: ra is the trace at the end of +β; the −β
    phase restarts the trace (with s, the current and the membrane) from the free
    phase's end, so rb continues that value through the −β spikes."""
    net = small_net
    W, b = _params(net)
    x = np.random.default_rng(3).uniform(0, 1, (1, 6))
    d = data.one_hot(np.array([2]), 3)
    spikes = IntegrateAndFire(r_max_hz=1000.0, dt_ms=0.5, free_ms=30.0, nudged_ms=15.0,
                              readout="trace")
    est = Estimator("symmetric", 1.0)
    _, res = _recorded(net, W, b, x, d, spikes, est, tmp_path)
    T1, T2 = spikes.free_steps, spikes.nudged_steps
    decay, jump = 1 - spikes.dt_ms / spikes.tau_trace_ms, spikes.trace_jump
    ra, rb = {}, {}
    for pop in net.dynamic:
        _, step, unit = res.states[("spikes", pop.name)].T
        before = step < T1 + T2
        plus = np.stack([_trace(step[before & (unit == j)], T1 + T2, spikes.dt_ms,
                                spikes.tau_trace_ms, jump) for j in range(pop.size)], axis=1)
        ra[pop.name], value = plus[-1], plus[T1 - 1].copy()
        for k in range(T1 + T2, T1 + 2 * T2):
            value = value * decay + jump * np.isin(np.arange(pop.size), unit[step == k])
        rb[pop.name] = value
    rho_x = energy.get_activation("hard_sigmoid").rho(x[0])
    ra[net.input.name] = rb[net.input.name] = rho_x
    for proj in net.projections:
        expected = proj.lr / (2 * est.beta) * (np.outer(ra[proj.pre], ra[proj.post])
                                               - np.outer(rb[proj.pre], rb[proj.post]))
        np.testing.assert_allclose(res.W[proj.name] - W[proj.name], expected,
                                   rtol=1e-9, atol=1e-13)
        assert np.abs(expected).max() > 1e-4


def test_continual_trace_rule_with_if_units_equals_hand_computation(small_net, tmp_path):
    """The continual rule reads the spike traces of integrate-and-fire units too."""
    check_continual_trace_rule(small_net, IntegrateAndFire(r_max_hz=400.0, dt_ms=0.5,
                                                           free_ms=30.0, nudged_ms=10.0),
                               tmp_path)


@pytest.mark.parametrize("options", [
    dict(membrane_noise=0.3, tau_m_ms=20.0, refractory_ms=2.0),
    dict(membrane="reset"),
])
def test_same_seed_same_spikes(small_net, tmp_path, options):
    net = small_net
    W, b = _params(net)
    x = np.random.default_rng(4).uniform(0, 1, (2, 6))
    d = data.one_hot(np.array([0, 1]), 3)
    spikes = IntegrateAndFire(r_max_hz=400.0, free_ms=20.0, nudged_ms=10.0, **options)
    est = Estimator("symmetric", 1.0)
    runs = [_recorded(net, W, b, x, d, spikes, est, tmp_path / str(i), seed=seed)[1]
            for i, seed in enumerate((9, 9, 10))]
    for pop in net.dynamic:
        key = ("spikes", pop.name)
        np.testing.assert_array_equal(runs[0].states[key], runs[1].states[key])
    for k in W:
        np.testing.assert_array_equal(runs[0].W[k], runs[1].W[k])
    noisy = options.get("membrane_noise", 0) > 0
    assert noisy == any(not np.array_equal(runs[0].states[("spikes", p.name)],
                                           runs[2].states[("spikes", p.name)])
                        for p in net.dynamic)


def test_refractory_period_caps_the_rate(small_net, tmp_path):
    """At 1 kHz drive, a 4 ms refractory period leaves at most one spike per 4 ms."""
    net = small_net
    W, b = _params(net)
    b = {k: v + 5.0 for k, v in b.items()}  # every unit saturates at ρ = 1
    x = np.ones((1, 6))
    spikes = IntegrateAndFire(r_max_hz=1000.0, dt_ms=0.5, free_ms=40.0, nudged_ms=10.0,
                              refractory_ms=4.0)
    rates = _free_rates(net, W, b, x, spikes, 20.0, tmp_path)
    assert rates.max() <= 0.25 + 1e-9 and rates.min() >= 0.2


@pytest.mark.parametrize("params, fix", [
    (dict(threshold=0.0), "threshold = 0.0 (--threshold): must be a positive number"),
    (dict(threshold=-1.0), "threshold = -1.0 (--threshold)"),
    (dict(tau_m_ms=0.0), "tau_m_ms = 0.0 (--tau-m): must be a positive number (inf: no leak)"),
    (dict(refractory_ms=50.0), "choose a refractory period below 40.0 ms"),
    (dict(membrane_noise=-0.1),
     "membrane_noise = -0.1 (--membrane-noise): must be a number >= 0"),
    (dict(membrane="keep"), "membrane = 'keep' (--membrane): choose one of carry, reset"),
    (dict(readout="rate"), "readout = 'rate' (--readout): choose one of trace, count"),
    (dict(free_ms=20.0, nudged_ms=40.0), "make the free phase at least as long"),
])
def test_bad_if_parameters_are_refused_with_the_fix(params, fix, tmp_path):
    with pytest.raises(ValueError, match=fix.replace("(", r"\(").replace(")", r"\)")
                       .replace(".", r"\.")):
        neuron_model("if", **{"free_ms": 100.0, "nudged_ms": 40.0, **params})
    assert not any(tmp_path.iterdir())


def test_if_options_belong_to_if_units():
    with pytest.raises(ValueError, match="--tau-m: parameters of integrate-and-fire units"):
        from_options("spiking", tau_m_ms=10.0)
    with pytest.raises(ValueError, match="--refractory: spiking parameters need"):
        from_options("rate", refractory_ms=2.0)
    model = from_options("if", None, free_ms=60.0, nudged_ms=30.0, tau_m_ms=None)
    assert model.free_steps == 120 and model.readout == "count"


def test_train_with_if_units_from_the_command_line(tmp_path):
    """``cortex-ep train --neurons if``: the model's IF settings, the run's attributes say
    which neurons and read-out, and a resumed run keeps them."""
    from conftest import tiny_if_run_inputs

    from cortex_ep.cli.main import main
    from cortex_ep.recordings.run import open_run

    model, data_dir = tiny_if_run_inputs(tmp_path)
    out = tmp_path / "run"
    argv = ["train", "--model", str(model), "--data", str(data_dir), "--neurons", "if",
            "--target", "numpy", "--membrane", "reset", "--out", str(out), "--record", "2"]
    assert main(argv) == 0
    run = open_run(out, chunks=False)
    attrs = run.history.attrs
    assert attrs["neurons"] == "if" and attrs["spike_readout"] == "count"
    assert attrs["spike_membrane"] == "reset" and attrs["estimator"] == "symmetric"
    assert attrs["free_steps"] == 60 and attrs["spike_r_max_hz"] == 500.0
    assert int(run.traces.spike_count.sum()) > 0
    assert main(["train", "--resume", str(out), "--epochs", "2", "--data", str(data_dir),
                 "--model", str(model), "--neurons", "if", "--target", "numpy",
                 "--membrane", "reset"]) == 0
    assert len(open_run(out, chunks=False).history.epoch) == 2


@pytest.mark.parametrize("argv, fix", [
    (["--neurons", "if", "--membrane-noise", "-1"], "membrane_noise = -1.0 (--membrane-noise)"),
    (["--neurons", "if", "--tau-m", "0"], "tau_m_ms = 0.0 (--tau-m)"),
    (["--neurons", "if", "--threshold", "0"], "threshold = 0.0 (--threshold)"),
    (["--neurons", "if", "--refractory", "150"], "choose a refractory period below"),
    (["--neurons", "spiking", "--tau-m", "20"], "--tau-m: parameters of integrate-and-fire"),
])
def test_bad_if_options_stop_the_command_before_any_work(tmp_path, capsys, argv, fix):
    from conftest import refused

    err = refused(["train", *argv, "--out", str(tmp_path / "run")], capsys)
    assert fix in err
    assert not (tmp_path / "run").exists()
