"""The backprop baselines."""

import numpy as np
import pytest
import torch

from cortex_ep import Relaxation, data
from cortex_ep.engines.twin import truth
from cortex_ep.engines.twin.backprop import FeedforwardEngine, RecurrentBackpropEngine
from cortex_ep.engines.twin.relax import to_tensors
from cortex_ep.model import energy
from cortex_ep.model.estimators import Estimator
from cortex_ep.model.spec import layered


def _problem(sizes, lrs, seed, n, bias):
    """A layered net with shifted biases and a random batch of ``n`` samples."""
    net = layered(sizes, lrs)
    rng = np.random.default_rng(seed)
    W, b = energy.init_params(net, seed)
    b = {k: v + bias for k, v in b.items()}
    x = rng.uniform(0, 1, (n, sizes[0]))
    d = data.one_hot(rng.integers(0, sizes[-1], n), sizes[-1])
    return net, W, b, x, d


def test_feedforward_sgd_step_equals_hand_written_backprop():
    net, W, b, x, d = _problem([4, 3, 2], [0.3, 0.2], seed=0, n=5, bias=0.1)
    engine = FeedforwardEngine(net, "logistic", "mse", dtype="float64")
    W_new, b_new, out, _ = engine.epoch(W, b, x, d, np.ones(5), 5, x[:0])
    sig = lambda z: 1 / (1 + np.exp(-z))
    h = sig(x @ W["x_h1"] + b["h1"])
    y = sig(h @ W["h1_y"] + b["y"])
    np.testing.assert_allclose(out, y, atol=1e-12)
    dy = (y - d) * y * (1 - y) / 5  # d(½‖y−d)‖² averaged) / dz_y
    dh = dy @ W["h1_y"].T * h * (1 - h)
    np.testing.assert_allclose(W_new["h1_y"], W["h1_y"] - 0.2 * h.T @ dy, atol=1e-12)
    np.testing.assert_allclose(W_new["x_h1"], W["x_h1"] - 0.3 * x.T @ dh, atol=1e-12)
    np.testing.assert_allclose(b_new["h1"], b["h1"] - 0.3 * dh.sum(0), atol=1e-12)


@pytest.mark.parametrize("activation, loss", [("relu", "cross_entropy"),
                                              ("hard_sigmoid", "mse")])
def test_feedforward_learns_a_separable_problem(activation, loss):
    net = layered([6, 8, 2], [0.5, 0.5])
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 200)
    x = rng.uniform(0, 0.3, (200, 6))
    x[np.arange(200), y * 3] = 1.0
    d = data.one_hot(y, 2)
    W, b = energy.init_params(net, 1)
    engine = FeedforwardEngine(net, activation, loss)
    for _ in range(20):
        W, b, _, test = engine.epoch(W, b, x, d, np.ones(200), 10, x)
    assert np.mean(test.argmax(1) == y) > 0.95


def test_feedforward_rejects_bad_options_and_recording():
    net = layered([4, 3, 2], [0.1, 0.1])
    with pytest.raises(ValueError, match="unknown backprop activation"):
        FeedforwardEngine(net, "softplus")
    with pytest.raises(ValueError, match="unknown loss"):
        FeedforwardEngine(net, "relu", "hinge")
    with pytest.raises(ValueError, match="no dynamics to record"):
        FeedforwardEngine(net).record(None, None, None, None, None)


@pytest.mark.parametrize("gradient", ["bptt", "implicit"])
def test_recurrent_backprop_steps_along_the_exact_gradient(gradient):
    net, W, b, x, d = _problem([5, 4, 3], [0.2, 0.1], seed=2, n=6, bias=0.3)
    rel = Relaxation(free_steps=300, nudged_steps=2)
    engine = RecurrentBackpropEngine(net, Estimator(), rel, dtype="float64", gradient=gradient)
    W_new, b_new, _, _ = engine.epoch(W, b, x, d, np.ones(6), 6, x[:0])
    Wt, bt = to_tensors(W, "cpu", torch.float64), to_tensors(b, "cpu", torch.float64)
    g = truth.bptt_gradient(net, torch.tensor(x), torch.tensor(d), Wt, bt, 300)
    np.testing.assert_allclose(W_new["x_h1"], W["x_h1"] - 0.2 * g.W["x_h1"].numpy(), atol=1e-9)
    np.testing.assert_allclose(b_new["y"], b["y"] - 0.1 * g.b["y"].numpy(), atol=1e-9)
    with pytest.raises(ValueError, match="unknown gradient"):
        RecurrentBackpropEngine(net, Estimator(), rel, gradient="adjoint")
