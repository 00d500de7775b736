"""Divergence and non-convergence are detected, named, and stop the run with its last good
checkpoint intact (or warn and go on, when asked)."""

import numpy as np
import pytest

from cortex_ep import Relaxation, data, io
from cortex_ep.learning import checkpoint, health
from cortex_ep.learning.loop import TrainConfig, train
from cortex_ep.model import energy
from cortex_ep.model.spec import layered


def _digits(n_train=40, n_test=20, pixels=6, seed=0):
    rng = np.random.default_rng(seed)
    return data.Digits(rng.uniform(0, 1, (n_train, pixels)), np.arange(n_train) % 10,
                       rng.uniform(0, 1, (n_test, pixels)), np.arange(n_test) % 10, "test")


def _net(lrs=(0.1, 0.05), dt=5.0):
    return layered([6, 5, 10], lrs, dt=dt, name="tiny")


def test_nan_weights_name_the_projection_and_the_cause():
    net = _net()
    W, b = energy.init_params(net)
    W["h1_y"][2, 3] = np.nan
    problem = health.check_epoch(net, W, b, [np.zeros((2, 10))], 4, np.zeros((2, 6)), 20,
                                 "hard_sigmoid", "0.1 / 0.05", 0.5)
    assert problem.epoch == 4
    assert "1 weights of projection h1->y became NaN or infinite" in str(problem)
    assert "learning rate (0.1 / 0.05) or β (0.5) is likely too large" in str(problem)


def test_exploding_biases_are_named():
    net = _net()
    W, b = energy.init_params(net)
    b["h1"][0] = 1e6
    problem = health.check_epoch(net, W, b, [], 1, np.zeros((2, 6)), 20, "hard_sigmoid",
                                 "0.1", 0.5)
    assert "biases of population h1 are exploding (max |w| = 1e+06" in str(problem)


def test_oscillating_free_phase_blames_dt():
    # dt close to τ with strong symmetric coupling: the Euler map flips every step
    net = _net(dt=9.5)
    W, b = energy.init_params(net)
    W["h1_y"][:] = -3.0
    b["h1"][:], b["y"][:] = 1.5, 1.5
    problem = health.check_settling(net, W, b, np.zeros((3, 6)), 30, "hard_sigmoid", 2)
    assert problem is not None
    assert "has not settled" in str(problem) and "at Euler step 30" in str(problem)
    assert "the Euler map oscillates: dt = 9.5 ms is too large for tau = 10 ms" in str(problem)


def test_short_free_phase_asks_for_more_steps():
    net = _net()
    W, b = energy.init_params(net, seed=1)
    b["h1"][:] = 0.5
    x = np.full((3, 6), 0.5)
    problem = health.check_settling(net, W, b, x, 2, "hard_sigmoid", 1)
    assert "raise --free-steps (now 2;" in str(problem)
    assert health.check_settling(net, W, b, x, 60, "hard_sigmoid", 1) is None


class _BreaksInEpoch:
    """The numpy reference, except that the weights turn NaN in epoch ``bad``."""

    def __init__(self, net, config, bad):
        from cortex_ep.engines.reference import ReferenceEngine

        self.inner = ReferenceEngine(net, config.estimator, config.relaxation, config.seed)
        self.bad, self.count = bad, 0

    def epoch(self, *args):
        self.count += 1
        W, b, train_out, test_out = self.inner.epoch(*args)
        if self.count == self.bad:
            W["x_h1"] = W["x_h1"] * np.nan
        return W, b, train_out, test_out

    def get_state(self):
        return self.inner.get_state()


def test_divergence_stops_with_the_last_good_checkpoint(tmp_path):
    net, digits = _net(), _digits()
    config = TrainConfig(epochs=3, batch_size=5, engine="numpy", relaxation=Relaxation(20, 4))
    out = tmp_path / "run"
    with pytest.raises(health.DivergenceError) as err:
        train(net, digits, config, out=out, progress=False,
              engine=_BreaksInEpoch(net, config, bad=2))
    message = str(err.value)
    assert message.startswith("epoch 2: 30 weights of projection x->h1 became NaN")
    assert f"the checkpoint of epoch 1 in {out} is intact" in message
    assert checkpoint.load(out).epoch == 1
    assert np.isfinite(io.read_dataset(out / "weights.nc").W_x_h1).all()
    assert io.read_dataset(out / "history.nc").sizes["epoch"] == 1
    assert not list(out.glob(".*.tmp"))

    with pytest.warns(RuntimeWarning, match="going on"):
        history, W, _ = train(net, digits, config, progress=False, on_divergence="warn",
                              engine=_BreaksInEpoch(net, config, bad=2))
    assert history.sizes["epoch"] == 3


def test_a_settled_default_relaxation_passes():
    net = _net()
    W, b = energy.init_params(net)
    x = _digits().x_test
    assert health.check_epoch(net, W, b, [np.zeros((2, 10))], 1, x, 20, "hard_sigmoid",
                              "0.1", 0.5) is None


def test_feedforward_weights_are_checked_without_a_free_phase():
    net = _net()
    W, b = energy.init_params(net)
    assert health.check_epoch(net, W, b, [np.zeros((2, 10))], 1, None, 20, "hard_sigmoid",
                              "2 / 0.5", 0.5) is None
    W["x_h1"][0, 0] = np.inf
    problem = health.check_epoch(net, W, b, [], 3, None, 20, "hard_sigmoid", "2 / 0.5", 0.5)
    assert "epoch 3: 1 weights of projection x->h1 became NaN or infinite" in str(problem)
