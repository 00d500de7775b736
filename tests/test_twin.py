"""The torch twin against the Brian2 engine, the numpy reference and its own fast path."""

import numpy as np
import pytest
import torch

from cortex_ep import Relaxation, data
from cortex_ep.engines import reference
from cortex_ep.engines.brian.engine import BrianEngine
from cortex_ep.engines.twin import fast
from cortex_ep.engines.twin.engine import TorchEngine
from cortex_ep.engines.twin.relax import resolve_device, to_tensors
from cortex_ep.model import dynamics, energy
from cortex_ep.model.estimators import Estimator
from cortex_ep.model.spec import layered

REL = Relaxation(free_steps=6, nudged_steps=3)


def _problem(seed=5, n=10, sizes=(6, 5, 3)):
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 1, (n, sizes[0]))
    x[x < 0.3] = 0.0
    y = rng.integers(0, sizes[-1], n)
    return x, data.one_hot(y, sizes[-1]), rng.uniform(0, 1, (4, sizes[0]))


@pytest.mark.parametrize("estimator", ["one-sided", "symmetric", "random-sign"])
def test_twin_and_brian_agree(tiny_net, tmp_path, estimator):
    """Same weights and input: the same free fixed point and the same update."""
    x, d, x_test = _problem()
    est = Estimator(estimator, 0.5)
    signs = est.signs(len(x), np.random.default_rng(2))
    W, b = energy.init_params(tiny_net, 1)
    b = {k: v + 0.1 for k, v in b.items()}
    twin = TorchEngine(tiny_net, est, REL, dtype="float64")
    brian = BrianEngine(tiny_net, est, REL, target="numpy", build_root=tmp_path)
    W_t, b_t, train_t, test_t = twin.epoch(W, b, x, d, signs, 4, x_test)
    W_b, b_b, train_b, test_b = brian.epoch(W, b, x, d, signs, 4, x_test)
    np.testing.assert_allclose(train_t, train_b, atol=1e-6)
    np.testing.assert_allclose(test_t, test_b, atol=1e-6)
    for k in W:
        assert np.abs(W_t[k] - W[k]).max() > 1e-3
        np.testing.assert_allclose(W_t[k], W_b[k], atol=1e-6)
    for k in b:
        np.testing.assert_allclose(b_t[k], b_b[k], atol=1e-6)
    rec_t = twin.record(W, b, x_test, np.zeros((4, 3)), np.ones(4))
    rec_b = brian.record(W, b, x_test, np.zeros((4, 3)), np.ones(4))
    for k in rec_t:
        np.testing.assert_allclose(rec_t[k], rec_b[k], atol=1e-6)


@pytest.mark.parametrize("sizes", [(6, 5, 3), (6, 5, 4, 3)])
def test_fast_relaxation_equals_the_energy_step(sizes):
    net = layered(list(sizes), [0.1] * (len(sizes) - 1))
    x, d, _ = _problem(sizes=sizes)
    W, b = energy.init_params(net, 3)
    b = {k: v + 0.2 for k, v in b.items()}
    Wt, bt = to_tensors(W, "cpu", torch.float64), to_tensors(b, "cpu", torch.float64)
    xt, dt = torch.tensor(x), torch.tensor(d)
    beta = torch.tensor(np.where(np.arange(len(x)) % 2, 0.5, -0.3))
    for target, b_ in ((None, 0.0), (dt, beta), (dt, 0.7)):
        s = dynamics.zero_state(net, xt)
        s = dynamics.relax(net, s, Wt, bt, 3)  # start from a non-trivial state
        got = fast.relax(net, s, Wt, bt, 7, target, b_)
        want = dynamics.relax(net, s, Wt, bt, 7, target, b_)
        for k in got:
            torch.testing.assert_close(got[k], want[k], atol=1e-12, rtol=0)


def test_twin_float32_follows_float64(tiny_net):
    x, d, x_test = _problem()
    est = Estimator("one-sided", 0.5)
    W, b = energy.init_params(tiny_net, 1)
    out = [TorchEngine(tiny_net, est, REL, dtype=dt).epoch(W, b, x, d, np.ones(10), 5, x_test)
           for dt in ("float32", "float64")]
    for k in W:
        np.testing.assert_allclose(out[0][0][k], out[1][0][k], atol=1e-5)


def test_twin_noise_scale():
    """σ √τ ξ: a uncoupled unit has stationary variance σ² h / (2h − h²)."""
    net = layered([1, 400, 1], [0.0, 0.0])
    W = {"x_h1": np.zeros((1, 400)), "h1_y": np.zeros((400, 1))}
    b = {"h1": np.full(400, 0.5), "y": np.full(1, 0.5)}
    engine = TorchEngine(net, Estimator("one-sided", 0.5), Relaxation(30, 1, noise=0.05),
                         dtype="float64", seed=4)
    states = engine.record(W, b, np.zeros((50, 1)), np.zeros((50, 1)), np.ones(50))
    late = states["h1"][:, 29]
    h = 0.5
    assert abs(late.var() / (0.05 ** 2 * h / (2 * h - h * h)) - 1) < 0.05


def test_twin_logistic_uses_the_generic_step(tiny_net):
    x, d, x_test = _problem()
    rel = Relaxation(6, 3, activation="logistic")
    est = Estimator("symmetric", 0.3)
    W, b = energy.init_params(tiny_net, 2)
    got = TorchEngine(tiny_net, est, rel, dtype="float64").epoch(W, b, x, d, np.ones(10), 5,
                                                                  x_test)
    want = reference.ReferenceEngine(tiny_net, est, rel).epoch(W, b, x, d, np.ones(10), 5,
                                                              x_test)
    for k in W:
        np.testing.assert_allclose(got[0][k], want[0][k], atol=1e-12)
    np.testing.assert_allclose(got[3], want[3], atol=1e-12)


def test_device_errors():
    with pytest.raises(ValueError, match="unknown device"):
        resolve_device("gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no usable CUDA"):
            resolve_device("cuda")
    with pytest.raises(ValueError, match="float32 or float64"):
        TorchEngine(layered([2, 2, 2], [0.1, 0.1]), Estimator(), REL, dtype="float16")
