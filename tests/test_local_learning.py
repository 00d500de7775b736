"""Continual plasticity and separate feedback: the engines agree, the rules match hand
computations and the exact gradient, and bad settings are refused."""

import numpy as np
import pytest
import xarray as xr

from cortex_ep import Relaxation, TrainConfig, data
from cortex_ep.engines.brian.engine import BrianEngine, make_schedule
from cortex_ep.engines.reference import ReferenceEngine
from cortex_ep.engines.twin.engine import TorchEngine
from cortex_ep.gradients.continual import continual_gradcheck
from cortex_ep.learning import health
from cortex_ep.learning.weights import params_from_weights, weights_dataset
from cortex_ep.model import dynamics, energy
from cortex_ep.model.estimators import Estimator
from cortex_ep.model.plasticity import Plasticity
from cortex_ep.model.spec import SpecError, layered, with_feedback

REL = Relaxation(free_steps=6, nudged_steps=3)


def _net(feedback="tied", lateral=False):
    # the full Glorot scale (layered's default is now 0.5): every matrix learns visibly
    return layered([6, 5, 4, 3], [0.1, 0.2, 0.05], tau=10.0, dt=5.0, name="tiny4",
                   feedback=feedback, feedback_init="random", init_gain=1.0,
                   lateral_lr={1: 0.3} if lateral else None)


def _params(net, seed=1):
    W, b = energy.init_params(net, seed)
    return W, {k: v + 0.1 for k, v in b.items()}


def _batch():
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (8, 6))
    x[x < 0.3] = 0.0
    return x, data.one_hot(rng.integers(0, 3, 8), 3)


# ------------------------------------------------------------------ description
def test_feedback_options_are_validated_with_the_fix():
    with pytest.raises(SpecError, match="feedback 'both'.*tied, separate"):
        layered([6, 5, 3], [0.1, 0.1], feedback="both")
    with pytest.raises(SpecError, match="feedback_init 'zero'.*transpose, random"):
        layered([6, 5, 3], [0.1, 0.1], feedback="separate", feedback_init="zero")
    from dataclasses import replace

    net = layered([6, 5, 3], [0.1, 0.1])
    with pytest.raises(SpecError, match="clamped input.*keep feedback='tied'"):
        replace(net, projections=(replace(net.projections[0], feedback="separate"),
                                  net.projections[1]))
    separate = with_feedback(net, "separate", "random")
    assert [p.feedback for p in separate.projections] == ["tied", "separate"]
    assert [p.name for p in separate.separate] == ["h1_y"]


def test_plasticity_rule_is_validated():
    with pytest.raises(ValueError, match="unknown plasticity rule 'hebb'"):
        Plasticity("hebb")
    with pytest.raises(ValueError, match="exact gradient: use --plasticity phase"):
        TrainConfig(engine="rbp", plasticity="continual")


def test_feedback_initialisation():
    tied, sep = _net(), _net("separate")
    W_tied, _ = energy.init_params(tied, 4)
    W_sep, _ = energy.init_params(sep, 4)
    for name in W_tied:  # B is drawn last: the forward weights do not move
        np.testing.assert_array_equal(W_sep[name], W_tied[name])
    for proj in sep.separate:
        B = W_sep[energy.feedback_name(proj.name)]
        assert B.shape == W_sep[proj.name].shape
        assert abs(np.corrcoef(B.ravel(), W_sep[proj.name].ravel())[0, 1]) < 0.6
    transposed = with_feedback(tied, "separate", "transpose")
    W_tr, _ = energy.init_params(transposed, 4)
    for proj in transposed.separate:
        np.testing.assert_array_equal(W_tr[energy.feedback_name(proj.name)], W_tr[proj.name])


def test_separate_feedback_carries_the_top_down_current():
    net = _net("separate")
    W, b = _params(net)
    x, _ = _batch()
    rng = np.random.default_rng(2)
    s = {"x": x, "h1": rng.uniform(0, 1, (8, 5)), "h2": rng.uniform(0, 1, (8, 4)),
         "y": rng.uniform(0, 1, (8, 3))}
    got = energy.drive(net, s, W, b)
    expected_h1 = b["h1"] + x @ W["x_h1"] + s["h2"] @ W["h1_h2_feedback"].T
    expected_h2 = b["h2"] + s["h1"] @ W["h1_h2"] + s["y"] @ W["h2_y_feedback"].T
    np.testing.assert_allclose(got["h1"], expected_h1, rtol=1e-13)
    np.testing.assert_allclose(got["h2"], expected_h2, rtol=1e-13)
    with pytest.raises(ValueError, match="no energy"):
        energy.energy(net, s, W, b)


def test_weights_files_carry_the_feedback_matrices():
    net = _net("separate")
    W, b = _params(net)
    ds = weights_dataset(net, W, b)
    assert ds["B_h2_y"].dims == ("h2_unit", "y_unit")
    W2, b2 = params_from_weights(net, ds)
    for k in W:
        np.testing.assert_array_equal(W2[k], W[k])
    with pytest.raises(ValueError, match="B_h1_h2 should have shape"):
        params_from_weights(net, weights_dataset(_net(), *_params(_net())))


def test_nan_feedback_weights_are_named():
    net = _net("separate")
    W, b = _params(net)
    W["h2_y_feedback"][0, 0] = np.nan
    problem = health.check_epoch(net, W, b, (), 2, None, 10, "hard_sigmoid", "0.1", 0.5)
    assert "feedback weights of projection h2->y" in str(problem)


# ------------------------------------------------------------ engines agree
def _three_engines(net, est, rule, x, d, W, b, signs, batch, tmp_path):
    plasticity = Plasticity(rule)
    brian = BrianEngine(net, est, REL, target="numpy", build_root=tmp_path,
                        plasticity=plasticity)
    res = brian.run(make_schedule(x, d, est, batch_size=batch, signs=signs), W, b)
    ref = ReferenceEngine(net, est, REL, plasticity=plasticity)
    W_ref, b_ref, out_ref, _ = ref.epoch(W, b, x, d, signs, batch, x[:2])
    twin = TorchEngine(net, est, REL, dtype="float64", plasticity=plasticity)
    W_tw, b_tw, out_tw, _ = twin.epoch(W, b, x, d, signs, batch, x[:2])
    return (res.W, res.b, res.free_output), (W_ref, b_ref, out_ref), (W_tw, b_tw, out_tw)


@pytest.mark.parametrize("rule,feedback,estimator", [
    ("continual", "tied", "one-sided"), ("continual", "tied", "symmetric"),
    ("continual", "separate", "random-sign"), ("continual", "separate", "symmetric"),
    ("phase", "separate", "one-sided"), ("phase", "separate", "symmetric")])
def test_brian_twin_and_reference_agree(rule, feedback, estimator, tmp_path):
    net = _net(feedback, lateral=True)
    W, b = _params(net)
    x, d = _batch()
    est = Estimator(estimator, 0.5)
    signs = est.signs(len(x), np.random.default_rng(3))
    brian, ref, twin = _three_engines(net, est, rule, x, d, W, b, signs, 3, tmp_path)
    np.testing.assert_allclose(brian[2], ref[2], atol=1e-12)
    np.testing.assert_allclose(twin[2], ref[2], atol=1e-12)
    for k in W:
        assert np.abs(ref[0][k] - W[k]).max() > 1e-3, k  # every matrix learned
        np.testing.assert_allclose(brian[0][k], ref[0][k], atol=1e-9, err_msg=k)
        np.testing.assert_allclose(twin[0][k], ref[0][k], atol=1e-9, err_msg=k)
    for k in b:
        np.testing.assert_allclose(brian[1][k], ref[1][k], atol=1e-9, err_msg=k)
        np.testing.assert_allclose(twin[1][k], ref[1][k], atol=1e-9, err_msg=k)


# ------------------------------------------------------ hand computations
def test_continual_rule_by_hand():
    """Two samples of one batch, one-sided: every nudged step changes W by
    lr/(β·B)·Δ(ρ_pre ρ_post), the next step uses the changed W, and the second
    sample starts from the first one's weights."""
    net = layered([6, 5, 3], [0.3, 0.2], name="hand")
    W, b = _params(net)
    x, d = _batch()
    x, d = x[:2], d[:2]
    beta, h = 0.5, net.dt / net.tau
    Wx, Wy, bh, by = (W["x_h1"].copy(), W["h1_y"].copy(), b["h1"].copy(), b["y"].copy())
    for i in range(2):
        xi, di = x[i:i + 1], d[i:i + 1]
        hh, yy = np.zeros((1, 5)), np.zeros((1, 3))
        for _ in range(REL.free_steps):
            hh, yy = (np.clip(hh + h * (-hh + xi @ Wx + yy @ Wy.T + bh), 0, 1),
                      np.clip(yy + h * (-yy + hh @ Wy + by), 0, 1))
        for _ in range(REL.nudged_steps):
            h_new = np.clip(hh + h * (-hh + xi @ Wx + yy @ Wy.T + bh), 0, 1)
            y_new = np.clip(yy + h * (-yy + hh @ Wy + by - beta * (yy - di)), 0, 1)
            scale = 1 / (beta * 2)  # batch of two
            Wx = Wx + 0.3 * scale * xi.T @ (h_new - hh)
            Wy = Wy + 0.2 * scale * (h_new.T @ y_new - hh.T @ yy)
            bh = bh + 0.3 * scale * (h_new - hh)[0]
            by = by + 0.2 * scale * (y_new - yy)[0]
            hh, yy = h_new, y_new
    engine = ReferenceEngine(net, Estimator("one-sided", beta), REL,
                             plasticity=Plasticity("continual"))
    W1, b1, _, _ = engine.epoch(W, b, x, d, np.ones(2), 2, x[:1])
    np.testing.assert_allclose(W1["x_h1"], Wx, atol=1e-14)
    np.testing.assert_allclose(W1["h1_y"], Wy, atol=1e-14)
    np.testing.assert_allclose(b1["h1"], bh, atol=1e-14)
    np.testing.assert_allclose(b1["y"], by, atol=1e-14)


def test_separate_feedback_learns_by_the_same_rule():
    net = _net("separate")
    W, b = _params(net)
    x, d = _batch()
    est = Estimator("one-sided", 0.5)
    W1, _, _, _ = ReferenceEngine(net, est, REL).epoch(W, b, x, d, np.ones(8), 8, x[:1])
    for proj in net.separate:
        B = energy.feedback_name(proj.name)
        # B − W keeps its initial value: both change by the same Δ
        np.testing.assert_allclose(W1[B] - W1[proj.name], W[B] - W[proj.name], atol=1e-14)


@pytest.mark.parametrize("estimator", ["one-sided", "symmetric"])
def test_continual_recordings_carry_each_phase_on(estimator, tmp_path):
    """Continual phases do not restart from s⁰; the symmetric order is free, −β, +β."""
    from cortex_ep.recordings import traces

    net = _net()
    W, b = _params(net)
    x, d = _batch()
    est, rule = Estimator(estimator, 0.5), Plasticity("continual")
    states = BrianEngine(net, est, REL, target="numpy", build_root=tmp_path,
                         plasticity=rule).record(W, b, x, d, np.ones(len(x)))
    phases = rule.phases(est)
    trace = traces.phase_traces(states, net, REL.free_steps, REL.nudged_steps, phases, True)
    if estimator == "symmetric":
        assert phases == ("free", "nudged_neg", "nudged")
        np.testing.assert_array_equal(trace[:, 2, 0], trace[:, 1, REL.nudged_steps])
    np.testing.assert_array_equal(trace[:, 1, 0], trace[:, 0, REL.free_steps])
    ref = dynamics.record_phases(net, x, d, W, b, REL.free_steps, REL.nudged_steps, 0.5,
                                 estimator == "symmetric", continual=True)
    for name, v in ref.items():
        np.testing.assert_allclose(states[name], np.stack(v, 1), atol=1e-12)


# ----------------------------------------------------------- exact gradient
def test_continual_update_approaches_the_phase_rule_and_the_gradient():
    net = layered([6, 5, 4, 3], [0.1, 0.1, 0.1], name="tiny4")
    W, b = _params(net)
    x, d = _batch()
    ds = continual_gradcheck(net, x, d, W, b, [1e-7, 1e-2, 3.0], [0.01], "symmetric",
                             nudged_steps=150)
    cos = ds.cosine.sel(beta=0.01)
    # η → 0: the continual update is the phase rule's on the same phases
    np.testing.assert_allclose(cos.sel(lr=1e-7), ds.limit_cosine.sel(beta=0.01), atol=1e-6)
    assert float(ds.limit_cosine.min()) > 0.999
    assert float(cos.sel(lr=3.0).min()) < float(cos.sel(lr=1e-7).min()) - 0.01
    assert set(ds.param.values) == {"W_x_h1", "W_h1_h2", "W_h2_y", "b_h1", "b_h2", "b_y"}


def test_continual_check_of_a_separate_network_uses_the_jacobian():
    net = _net("separate")
    W, b = _params(net)
    x, d = _batch()
    ds = continual_gradcheck(net, x, d, W, b, [1e-7], [0.01], "one-sided", nudged_steps=150)
    assert "B_h2_y" in ds.param.values
    assert np.all(np.isfinite(ds.cosine.values))
    xr.testing.assert_allclose(ds.cosine.isel(lr=0, drop=True), ds.limit_cosine, atol=1e-5)
