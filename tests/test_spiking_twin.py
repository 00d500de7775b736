"""The torch twin's spiking units against Brian2 (numpy target, small nets).

Integrate-and-fire units are deterministic: the twin must fire Brian2's spikes
and learn its weights (float64, several batches with learning).  Poisson units
agree in distribution: mean counts and mean updates within Poisson tolerances.
"""

from dataclasses import replace

import numpy as np
import pytest
import torch
from test_spiking import _params

from cortex_ep import Relaxation, data
from cortex_ep.engines.brian.engine import BrianEngine
from cortex_ep.engines.twin.engine import TorchEngine
from cortex_ep.model.estimators import Estimator
from cortex_ep.model.neurons import IntegrateAndFire, Spiking
from cortex_ep.model.plasticity import Plasticity
from cortex_ep.model.spec import layered

SMALL_IF = IntegrateAndFire(r_max_hz=1000.0, dt_ms=0.5, free_ms=20.0, nudged_ms=10.0)

#: variants of network, neuron model and estimator that every step of the twin must match
IF_CASES = {
    "counts, symmetric": dict(),
    "traces, one-sided": dict(spikes=dict(readout="trace"),
                              estimator=Estimator("one-sided", 0.5)),
    "leak, refractory, reset membrane, random sign": dict(
        spikes=dict(tau_m_ms=20.0, refractory_ms=1.5, membrane="reset", threshold=0.7,
                    r_max_hz=600.0),
        estimator=Estimator("random-sign", 0.5)),
    "random separate feedback, three layers": dict(
        sizes=(8, 6, 5, 3), net=dict(feedback="separate", feedback_init="random")),
    "Kolen–Pollack feedback, three layers": dict(
        sizes=(8, 6, 5, 3), net=dict(feedback="separate", feedback_init="random",
                                     feedback_learning="kolen-pollack", feedback_decay=0.5)),
    "lateral weights in columns": dict(net=dict(columns={1: 2}, lateral_lr={1: 0.05})),
}


def _case(case):
    sizes = case.get("sizes", (8, 6, 3))
    net = layered(sizes, (0.3,) * (len(sizes) - 2) + (0.1,), tau=10.0, dt=5.0, name="twin",
                  **case.get("net", {}))
    spikes = replace(SMALL_IF, **case.get("spikes", {}))
    return net, spikes, case.get("estimator", Estimator("symmetric", 1.0))


def _engines(net, spikes, est, tmp_path, seed=0):
    brian = BrianEngine(net, est, Relaxation(), target="numpy", build_root=tmp_path,
                        spikes=spikes, seed=seed)
    twin = TorchEngine(net, est, Relaxation(), spikes=spikes, dtype="float64", seed=seed)
    return brian, twin


def _digits(net, n, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 1, (n, net.input.size))
    return x, data.one_hot(rng.integers(0, net.output.size, n), net.output.size)


def first_difference(a, b):
    """The first (sample, step) at which two spike lists (rows of sample, step, unit)
    differ, or None."""
    differ = set(map(tuple, a)) ^ set(map(tuple, b))
    return min((s, k) for s, k, _ in differ) if differ else None


@pytest.mark.parametrize("name", list(IF_CASES))
def test_if_twin_fires_brian2s_spikes_and_learns_its_weights(name, tmp_path):
    """Same spikes at every step of every phase, the same states, and after two
    batches with learning the same weights (float64, 1e-9)."""
    net, spikes, est = _case(IF_CASES[name])
    W, b = _params(net)
    x, d = _digits(net, 6)
    signs = est.signs(6, np.random.default_rng(1))
    brian, twin = _engines(net, spikes, est, tmp_path)
    recorded = brian.record(W, b, x, d, signs), twin.record(W, b, x, d, signs)
    fired = 0
    for pop in net.dynamic:
        key = ("spikes", pop.name)
        assert first_difference(recorded[0][key], recorded[1][key]) is None, \
            f"{pop.name}: first spike difference at (sample, step) " \
            f"{first_difference(recorded[0][key], recorded[1][key])}"
        fired += len(recorded[0][key])
        np.testing.assert_allclose(recorded[1][pop.name], recorded[0][pop.name], atol=1e-12)
    assert fired > 100
    W_brian, b_brian, train_brian, test_brian = brian.epoch(W, b, x, d, signs, 3, x[:2])
    W_twin, b_twin, train_twin, test_twin = twin.epoch(W, b, x, d, signs, 3, x[:2])
    for key in W:
        assert np.abs(W_brian[key] - W[key]).max() > 1e-4, f"{key} did not learn"
        np.testing.assert_allclose(W_twin[key], W_brian[key], rtol=0, atol=1e-9)
    for key in b:
        np.testing.assert_allclose(b_twin[key], b_brian[key], rtol=0, atol=1e-9)
    np.testing.assert_allclose(train_twin, train_brian, atol=1e-9)
    np.testing.assert_allclose(test_twin, test_brian, atol=1e-9)


def test_poisson_twin_agrees_with_brian2_in_distribution(tmp_path):
    """Poisson units, one digit presented 60 times: each population's mean count per
    unit and sample, and the mean weight update, agree within 4 standard errors."""
    net = layered((8, 6, 3), (0.3, 0.1), tau=10.0, dt=5.0, name="poisson")
    spikes = Spiking(r_max_hz=1000.0, dt_ms=0.5, free_ms=40.0, nudged_ms=40.0)
    est = Estimator("symmetric", 1.0)
    W, b = _params(net)
    x, d = _digits(net, 1)
    n = 60
    x, d, signs = np.repeat(x, n, 0), np.repeat(d, n, 0), np.ones(n)
    brian, twin = _engines(net, spikes, est, tmp_path, seed=3)
    recorded = brian.record(W, b, x, d, signs), twin.record(W, b, x, d, signs)
    for pop in net.dynamic:
        per_sample = [np.bincount(r[("spikes", pop.name)][:, 0], minlength=n) / pop.size
                      for r in recorded]
        error = np.sqrt(per_sample[0].var(ddof=1) / n + per_sample[1].var(ddof=1) / n)
        assert per_sample[0].mean() > 2
        assert abs(per_sample[0].mean() - per_sample[1].mean()) < 4 * error, pop.name
    # per-sample updates of the twin give the spread of a batch mean of n of them
    tensors = [{k: torch.as_tensor(v) for k, v in params.items()} for params in (W, b)]
    a_rates, b_rates, _ = twin.spiking.run(torch.as_tensor(x), torch.as_tensor(d), *tensors,
                                           torch.as_tensor(signs))
    factor = est.factors(signs)[0]
    spread = {}
    for proj in net.projections:
        single = factor * (np.einsum("bi,bj->bij", a_rates[proj.pre].numpy(),
                                     a_rates[proj.post].numpy())
                           - np.einsum("bi,bj->bij", b_rates[proj.pre].numpy(),
                                       b_rates[proj.post].numpy()))
        spread[proj.name] = proj.lr * single.std(0, ddof=1) / np.sqrt(n)
    changes = [engine.epoch(W, b, x, d, signs, n, x[:0])[0] for engine in (brian, twin)]
    for proj in net.projections:
        delta = changes[0][proj.name] - changes[1][proj.name]
        z = delta / np.sqrt(2 * spread[proj.name] ** 2 + 1e-30)
        # a chi-square over the weights: mean z² is 1 if only sampling noise differs
        assert np.mean(z ** 2) < 2.0, (proj.name, np.mean(z ** 2))
        # ... and the updates stand out of that noise
        assert (np.linalg.norm(changes[0][proj.name] - W[proj.name])
                > 3 * np.linalg.norm(spread[proj.name])), proj.name


def test_twin_spiking_runs_refuse_the_continual_rule():
    from cortex_ep.learning.loop import TrainConfig

    with pytest.raises(ValueError, match="--plasticity phase in the torch twin"):
        TrainConfig(engine="torch", plasticity="continual", spiking=SMALL_IF)
    with pytest.raises(ValueError, match="use --engine brian or --engine torch"):
        TrainConfig(engine="numpy", spiking=SMALL_IF)
    net = layered((8, 6, 3), (0.3, 0.1), name="twin")
    with pytest.raises(ValueError, match="learn by the phase rule"):
        TorchEngine(net, Estimator(), Relaxation(), plasticity=Plasticity("continual"),
                    spikes=SMALL_IF)


def test_twin_spiking_run_from_the_command_line(tmp_path):
    """``cortex-ep train --engine torch --neurons if``: checkpoints, --record (spikes
    in the traces), --resume, ``info`` and ``plot`` as for a rate run."""
    from conftest import tiny_if_run_inputs

    from cortex_ep.cli.main import main
    from cortex_ep.recordings.run import open_run

    model, data_dir = tiny_if_run_inputs(tmp_path)
    out = tmp_path / "run"
    common = ["--model", str(model), "--data", str(data_dir), "--neurons", "if",
              "--engine", "torch", "--threshold", "0.5"]
    assert main(["train", *common, "--out", str(out), "--record", "2"]) == 0
    run = open_run(out, chunks=False)
    attrs = run.history.attrs
    assert attrs["engine"] == "torch" and attrs["neurons"] == "if"
    assert attrs["spike_threshold"] == 0.5 and attrs["free_steps"] == 60
    assert int(run.traces.spike_count.sum()) > 0
    assert main(["train", "--resume", str(out), "--epochs", "2", *common]) == 0
    assert len(open_run(out, chunks=False).history.epoch) == 2
    assert main(["info", str(out)]) == 0
    assert main(["plot", str(out)]) == 0
    assert any(out.rglob("*.png"))
