"""Dead output units (and mostly silent hidden layers) are named after the epoch that
made them, with unit, class and fixes; the small-β rates are what the command takes."""

import numpy as np
import pytest

from cortex_ep import Relaxation, data, models
from cortex_ep.cli.main import main
from cortex_ep.learning import health
from cortex_ep.learning.loop import TrainConfig, train
from cortex_ep.model import energy
from cortex_ep.model.estimators import Estimator
from cortex_ep.model.spec import layered


def _digits(n_train=40, n_test=20, pixels=6, seed=0):
    rng = np.random.default_rng(seed)
    return data.Digits(rng.uniform(0, 1, (n_train, pixels)), np.arange(n_train) % 10,
                       rng.uniform(0, 1, (n_test, pixels)), np.arange(n_test) % 10, "test")


class _Forced:
    """The numpy reference engine, with some biases pinned after every epoch."""

    def __init__(self, net, config, biases: dict):
        from cortex_ep.engines.reference import ReferenceEngine

        self.inner = ReferenceEngine(net, config.estimator, config.relaxation, config.seed)
        self.biases = biases
        self.net, self.relaxation = net, config.relaxation

    def epoch(self, W, b, *args):
        W, b, train_out, _ = self.inner.epoch(W, b, *args)
        for (pop, unit), value in self.biases.items():
            b[pop][unit] = value
        x_test = args[-1]
        from cortex_ep.engines.reference import predict

        return W, b, train_out, predict(self.net, x_test, W, b, self.relaxation)

    def get_state(self):
        return self.inner.get_state()


def _train_forced(biases, on_divergence="stop", beta=0.5, hidden=8):
    net = layered([6, hidden, 10], (0.1, 0.05), name="tiny")
    config = TrainConfig(epochs=2, batch_size=5, engine="numpy", relaxation=Relaxation(20, 4),
                         estimator=Estimator("one-sided", beta))
    return train(net, _digits(), config, progress=False, on_divergence=on_divergence,
                 engine=_Forced(net, config, biases))


def test_an_output_unit_forced_silent_stops_the_run_naming_unit_and_class():
    with pytest.raises(health.DivergenceError) as err:
        _train_forced({("y", 3): -5.0})
    message = str(err.value)
    # dead after epoch 1 (the hidden layer's drift might revive it), reported after 2
    assert message.startswith("epoch 2: output unit 3 of population y (class 3) is silent "
                              "(state 0) for all 20 held-out digits, after this epoch and "
                              "the one before, and")
    assert "the nudge β(d − s), at most 0.5, cannot lift it" in message
    assert "Likely fixes: smaller learning rates (now 0.1 / 0.05" in message


def test_warn_goes_on_and_names_every_dead_unit():
    with pytest.warns(RuntimeWarning, match=r"output units 2, 7 of population y \(classes "
                                            r"2, 7\) are silent .*going on"):
        history, _, _ = _train_forced({("y", 2): -5.0, ("y", 7): -5.0}, on_divergence="warn")
    assert history.sizes["epoch"] == 2


def test_a_saturated_output_unit_is_named():
    with pytest.raises(health.DivergenceError,
                       match=r"epoch 2: output unit 4 of population y \(class 4\) is "
                             r"saturated \(state 1\) for all 20 held-out digits"):
        _train_forced({("y", 4): 5.0})


def test_a_mostly_silent_hidden_population_is_named():
    biases = {("h1", unit): -5.0 for unit in range(6)}
    with pytest.raises(health.DivergenceError,
                       match=r"epoch 2: 6 of the 8 units of hidden population h1 \(75%\) "
                             r"never leave 0 on the 20 probe digits \(units 0, 1, 2, 3, 4, 5\) "
                             r"after this epoch and the one before"):
        _train_forced(biases)
    _train_forced({("h1", unit): -5.0 for unit in range(4)})  # half is not more than half


def _pinned_network(bias: float):
    net = layered([6, 8, 10], (0.1, 0.05), name="tiny")
    W, b = energy.init_params(net)
    b["y"][5] = bias
    x = _digits().x_test
    probe = energy.euler_step(net, {"x": x, "h1": np.zeros((20, 8)), "y": np.zeros((20, 10))},
                              W, b)
    for _ in range(40):
        probe = energy.euler_step(net, probe, W, b)
    return net, W, b, probe


class _DeadOnlyInEpoch(_Forced):
    """Pins output unit 6 at 0 after epoch ``dead`` only (its bias comes back after)."""

    def __init__(self, net, config, dead: int):
        super().__init__(net, config, {})
        self.dead, self.count, self.kept = dead, 0, None

    def epoch(self, W, b, *args):
        self.count += 1
        if self.count == self.dead:
            self.kept = float(b["y"][6])
            self.biases = {("y", 6): -5.0}
        elif self.count == self.dead + 1:
            b["y"][6] = self.kept
            self.biases = {}
        return super().epoch(W, b, *args)


def test_a_unit_dead_after_one_epoch_only_is_not_reported():
    net = layered([6, 8, 10], (0.1, 0.05), name="tiny")
    config = TrainConfig(epochs=3, batch_size=5, engine="numpy", relaxation=Relaxation(20, 4))
    engine = _DeadOnlyInEpoch(net, config, dead=2)
    history, _, _ = train(net, _digits(), config, progress=False, engine=engine)
    assert history.sizes["epoch"] == 3 and engine.count == 3
    watch = health.DeadUnitWatch()  # the same unit twice in a row is
    assert watch.confirmed({(0, 6)}) == set() and watch.confirmed({(0, 6)}) == {(0, 6)}


def test_a_silent_unit_that_the_nudge_can_lift_is_not_dead():
    net, W, b, probe = _pinned_network(bias=-0.4)
    assert list(health.dead_outputs(probe["y"])[0]) == [5]  # silent on every digit
    drive = energy.drive(net, probe, W, b)["y"][:, 5]
    # within β = 0.5's reach on some digits, out of β = 0.1's on every one
    assert -0.5 < drive.max() < -0.1
    assert health.check_dead_units(net, W, b, probe["y"], probe, 1, "0.1", 0.5) is None
    problem = health.check_dead_units(net, W, b, probe["y"], probe, 1, "0.1", 0.1)
    assert problem is not None and "output unit 5 " in str(problem)  # β = 0.1 cannot


def test_the_dead_unit_check_costs_no_relaxation(monkeypatch):
    net, W, b, probe = _pinned_network(bias=-5.0)
    steps = []
    original = energy.euler_step
    monkeypatch.setattr(energy, "euler_step",
                        lambda *a, **k: steps.append(1) or original(*a, **k))
    x = _digits().x_test
    without = health.check_epoch(net, W, b, [probe["y"]], 1, x, 20, "hard_sigmoid", "0.1",
                                 0.5)
    n_without = len(steps)
    with_check = health.check_epoch(net, W, b, [probe["y"]], 1, x, 20, "hard_sigmoid", "0.1",
                                    0.5, held_out=probe["y"])
    assert without is None and "output unit 5 " in str(with_check)
    assert len(steps) == 2 * n_without == 40  # the probe's 20 free steps, once per call


def test_small_beta_takes_the_models_small_beta_rates():
    two_layer = models.load("two_layer")
    assert models.tuned_learning_rates(two_layer, "torch", beta=0.1) == (0.2, 0.05)
    assert models.tuned_learning_rates(two_layer, "brian", beta=-0.2) == (0.2, 0.05)
    assert models.tuned_learning_rates(two_layer, "torch", beta=0.5) is None  # its own
    assert models.tuned_learning_rates(two_layer, "rbp", beta=0.1) == (0.05, 0.04)
    assert models.tuned_learning_rates(two_layer, "torch", "continual", beta=0.1) == \
        two_layer.CONTINUAL_LEARNING_RATES
    assert models.tuned_learning_rates(two_layer, "brian", neurons="spiking", beta=0.1) == \
        two_layer.SPIKING_LEARNING_RATES
    assert models.tuned_learning_rates(models.load("three_layer"), "torch", beta=0.1) is None


@pytest.mark.parametrize("extra, rates", [([], [0.2, 0.05]),
                                          (["--lr", "0.3", "0.04"], [0.3, 0.04])])
def test_the_command_at_small_beta_uses_the_small_beta_rates_unless_told(tmp_path, extra,
                                                                         rates):
    from cortex_ep import io

    out = tmp_path / "run"
    assert main(["train", "--engine", "torch", "--beta", "0.1", "--estimator", "symmetric",
                 "--train-size", "20", "--test-size", "10", "--epochs", "1", "--batch-size",
                 "10", "--out", str(out), "--no-progress", "--on-divergence", "warn",
                 *extra]) == 0
    history = io.read_dataset(out / "history.nc")
    np.testing.assert_allclose(history.attrs["learning_rates"], rates)
