"""The Brian2 engine against the numpy reference and independent formulas."""

import numpy as np
import pytest

from cortex_ep import Relaxation, data
from cortex_ep.engines import reference
from cortex_ep.engines.brian.engine import BrianEngine, make_schedule
from cortex_ep.engines.twin.engine import TorchEngine
from cortex_ep.model import energy
from cortex_ep.model.estimators import Estimator
from cortex_ep.model.spec import layered

REL = Relaxation(free_steps=6, nudged_steps=3)


def _params(net, seed=1):
    W, b = energy.init_params(net, seed)
    return W, {k: v + 0.1 for k, v in b.items()}


def _reference_training(net, x, d, W, b, est, signs, batch_size):
    W = {k: v.copy() for k, v in W.items()}
    b = {k: v.copy() for k, v in b.items()}
    outs = [reference.train_batch(net, x[i:i + batch_size], d[i:i + batch_size], W, b, est,
                                  REL, signs[i:i + batch_size])
            for i in range(0, len(x), batch_size)]
    return W, b, np.concatenate(outs)


@pytest.mark.parametrize("estimator", ["one-sided", "symmetric", "random-sign"])
def test_brian_training_equals_numpy_reference(tiny_net, tiny_batch, estimator, tmp_path):
    x, d, _ = tiny_batch
    W, b = _params(tiny_net)
    est = Estimator(estimator, 0.5)
    schedule = make_schedule(x, d, est, np.random.default_rng(1), batch_size=3)
    engine = BrianEngine(tiny_net, est, REL, target="numpy", build_root=tmp_path)
    res = engine.run(schedule, W, b)
    W_ref, b_ref, out_ref = _reference_training(tiny_net, x, d, W, b, est,
                                                schedule.nudge_sign, 3)
    np.testing.assert_allclose(res.free_output, out_ref, atol=1e-12)
    for k in W:
        assert np.abs(res.W[k] - W[k]).max() > 1e-3  # it did learn
        np.testing.assert_allclose(res.W[k], W_ref[k], atol=1e-12)
    for k in b:
        np.testing.assert_allclose(res.b[k], b_ref[k], atol=1e-12)


def test_brian_steps_equal_independent_numpy_integration(tiny_net, tiny_batch, tmp_path):
    """Every recorded Brian2 step equals the projected Euler step of the model page (docs/model.rst) written out."""
    x, d, _ = tiny_batch
    W, b = _params(tiny_net)
    est = Estimator("one-sided", 0.7)
    engine = BrianEngine(tiny_net, est, REL, target="numpy", build_root=tmp_path)
    states = engine.record(W, b, x, d, np.ones(len(x)))
    W1, W2, bh, by = W["x_h1"], W["h1_y"], b["h1"], b["y"]
    h = np.zeros((len(x), 5))
    y = np.zeros((len(x), 3))
    ratio = tiny_net.dt / tiny_net.tau
    expected_h, expected_y = [], []
    for k in range(REL.free_steps + REL.nudged_steps):
        beta = 0.7 if k >= REL.free_steps else 0.0
        dh = -h + (x @ W1 + np.clip(y, 0, 1) @ W2.T + bh)
        dy = -y + (np.clip(h, 0, 1) @ W2 + by) - beta * (y - d)
        h, y = np.clip(h + ratio * dh, 0, 1), np.clip(y + ratio * dy, 0, 1)
        expected_h.append(h)
        expected_y.append(y)
    np.testing.assert_allclose(states["h1"], np.stack(expected_h, 1), atol=1e-12)
    np.testing.assert_allclose(states["y"], np.stack(expected_y, 1), atol=1e-12)


@pytest.mark.parametrize("estimator", ["one-sided", "symmetric"])
def test_weight_update_equals_ep_formula_from_recorded_phases(tiny_net, tiny_batch,
                                                             estimator, tmp_path):
    x, d, _ = tiny_batch
    W, b = _params(tiny_net)
    beta = 0.4
    est = Estimator(estimator, beta)
    engine = BrianEngine(tiny_net, est, REL, target="numpy", build_root=tmp_path)
    rec = engine.record(W, b, x, d, np.ones(len(x)))
    T1, T2 = REL.free_steps, REL.nudged_steps
    r = {k: np.clip(v, 0, 1) for k, v in rec.items()}
    free = {k: v[:, T1 - 1] for k, v in r.items()}
    pos = {k: v[:, T1 + T2 - 1] for k, v in r.items()}
    if estimator == "symmetric":
        neg = {k: v[:, T1 + 2 * T2 - 1] for k, v in r.items()}
        a, c, factor = pos, neg, 1 / (2 * beta)
    else:
        a, c, factor = pos, free, 1 / beta
    a["x"] = c["x"] = x
    n = len(x)
    expected_W = {
        "x_h1": factor * (a["x"].T @ a["h1"] - c["x"].T @ c["h1"]) / n,
        "h1_y": factor * (a["h1"].T @ a["y"] - c["h1"].T @ c["y"]) / n,
    }
    schedule = make_schedule(x, d, est, batch_size=n)  # one batch: one update
    res = engine.run(schedule, W, b)
    for name, proj_lr in (("x_h1", 0.1), ("h1_y", 0.05)):
        np.testing.assert_allclose((res.W[name] - W[name]) / proj_lr, expected_W[name],
                                   atol=1e-12)
    np.testing.assert_allclose((res.b["y"] - b["y"]) / 0.05,
                               factor * (a["y"] - c["y"]).mean(0), atol=1e-12)


def test_noise_has_the_design_scale(tmp_path):
    """σ √τ ξ in τ ds/dt: with no input coupling a unit is an Ornstein–Uhlenbeck
    process whose stationary variance for h = dt/τ is σ² h / (2h − h²)."""
    net = layered([1, 50, 1], [0.0, 0.0])
    W = {"x_h1": np.zeros((1, 50)), "h1_y": np.zeros((50, 1))}
    b = {"h1": np.full(50, 0.5), "y": np.full(1, 0.5)}
    sigma = 0.05
    est = Estimator("one-sided", 0.5)
    rel = Relaxation(20, 1, noise=sigma)
    engine = BrianEngine(net, est, rel, target="numpy", build_root=tmp_path, seed=3)
    n = 200
    states = engine.record(W, b, np.zeros((n, 1)), np.zeros((n, 1)), np.ones(n))
    late = states["h1"][:, 19]
    h = net.dt / net.tau
    expected = sigma ** 2 * h / (2 * h - h * h)
    assert abs(late.var() / expected - 1) < 0.06
    assert abs(late.mean() - 0.5) < 0.002


def test_default_target_builds_once_and_matches_reference(tiny_net, tiny_batch, tmp_path):
    """cpp_standalone: one build, re-run with new data and weights via run_args."""
    x, d, _ = tiny_batch
    W, b = _params(tiny_net)
    est = Estimator("symmetric", 0.5)
    engine = BrianEngine(tiny_net, est, REL, build_root=tmp_path)
    assert engine.target == "cpp_standalone"
    sched = make_schedule(x, d, est, batch_size=4)
    res = engine.run(sched, W, b)
    built = engine._built
    W_ref, b_ref, out_ref = _reference_training(tiny_net, x, d, W, b, est,
                                                sched.nudge_sign, 4)
    np.testing.assert_allclose(res.free_output, out_ref, atol=1e-12)
    for k in W:
        np.testing.assert_allclose(res.W[k], W_ref[k], atol=1e-12)
    # the torch twin agrees with the compiled Brian2 engine too
    twin = TorchEngine(tiny_net, est, REL, dtype="float64")
    W_t, b_t, out_t, _ = twin.epoch(W, b, x, d, sched.nudge_sign, 4, x[:0])
    np.testing.assert_allclose(res.free_output, out_t, atol=1e-6)
    for k in W:
        np.testing.assert_allclose(res.W[k], W_t[k], atol=1e-6)
    for k in b:
        np.testing.assert_allclose(res.b[k], b_t[k], atol=1e-6)
    # a second run with the learned weights and other data reuses the binary
    x2 = x[::-1].copy()
    res2 = engine.run(make_schedule(x2, d[::-1], est, batch_size=4), res.W, res.b)
    assert engine._built is built
    W_ref2, _, out_ref2 = _reference_training(tiny_net, x2, d[::-1], W_ref, b_ref, est,
                                              np.ones(len(x)), 4)
    np.testing.assert_allclose(res2.free_output, out_ref2, atol=1e-12)
    for k in W:
        np.testing.assert_allclose(res2.W[k], W_ref2[k], atol=1e-12)


def test_engine_epoch_protocol_matches_reference_engine(tiny_net, tmp_path):
    rng = np.random.default_rng(5)
    x = rng.uniform(0, 1, (10, 6))
    y = rng.integers(0, 3, 10)
    d = data.one_hot(y, 3)
    x_test = rng.uniform(0, 1, (4, 6))
    est = Estimator("random-sign", 0.5)
    signs = est.signs(10, rng)
    W, b = _params(tiny_net)
    brian = BrianEngine(tiny_net, est, REL, target="numpy", build_root=tmp_path)
    ref = reference.ReferenceEngine(tiny_net, est, REL)
    out_b = brian.epoch(W, b, x, d, signs, 4, x_test)
    out_r = ref.epoch(W, b, x, d, signs, 4, x_test)
    for k in W:
        np.testing.assert_allclose(out_b[0][k], out_r[0][k], atol=1e-12)
    np.testing.assert_allclose(out_b[2], out_r[2], atol=1e-12)
    np.testing.assert_allclose(out_b[3], out_r[3], atol=1e-12)
    rec_b = brian.record(out_b[0], out_b[1], x_test, np.zeros((4, 3)), np.ones(4))
    rec_r = ref.record(out_r[0], out_r[1], x_test, np.zeros((4, 3)), np.ones(4))
    for k in rec_b:
        np.testing.assert_allclose(rec_b[k], rec_r[k], atol=1e-12)


def test_unknown_target(tiny_net):
    with pytest.raises(ValueError, match="unknown Brian2 target 'gpu'"):
        BrianEngine(tiny_net, Estimator(), REL, target="gpu")


def test_sample_durations_that_are_not_whole_in_floating_point(tiny_net, tiny_batch, tmp_path):
    """20 free + 2 × 4 nudged steps of 5 ms: 140 ms / 5 ms is 28.000000000000004 in
    floating point; the per-sample tables must still switch exactly at sample edges."""
    x, d, _ = tiny_batch
    W, b = _params(tiny_net)
    est = Estimator("symmetric", 0.5)
    rel = Relaxation(20, 4)
    schedule = make_schedule(x, d, est, batch_size=3)
    res = BrianEngine(tiny_net, est, rel, target="numpy", build_root=tmp_path).run(
        schedule, W, b)
    W_ref, b_ref = {k: v.copy() for k, v in W.items()}, {k: v.copy() for k, v in b.items()}
    out = [reference.train_batch(tiny_net, x[i:i + 3], d[i:i + 3], W_ref, b_ref, est, rel,
                                 np.ones(len(x[i:i + 3])))
           for i in range(0, len(x), 3)]
    np.testing.assert_allclose(res.free_output, np.concatenate(out), atol=1e-12)
    for k in W:
        np.testing.assert_allclose(res.W[k], W_ref[k], atol=1e-12)
