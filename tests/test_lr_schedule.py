"""Learning-rate schedules: the factors, and a scheduled run against hand-made epochs."""

import numpy as np
import pytest

from cortex_ep import TrainConfig
from cortex_ep.engines.registry import make_engine
from cortex_ep.learning.schedule import ScheduledEngine, lr_factor, scaled_rates


def test_factors():
    assert [lr_factor("constant", e, 4) for e in range(4)] == [1.0] * 4
    cos = [lr_factor("cosine", e, 4) for e in range(4)]
    np.testing.assert_allclose(cos, [1.0, 0.5 + 0.5 * np.cos(np.pi / 4), 0.5,
                                     0.5 - 0.5 * np.cos(np.pi / 4)])
    with pytest.raises(ValueError, match="unknown learning-rate schedule"):
        lr_factor("step", 0, 4)


def test_scheduled_epochs_equal_engines_built_at_the_scaled_rates(tiny_net, tiny_batch):
    x, d, y = tiny_batch
    config = TrainConfig(epochs=3, batch_size=4, engine="numpy")
    from cortex_ep.model import energy

    W0, b0 = energy.init_params(tiny_net, 0)
    signs = np.ones(len(x))
    sched = ScheduledEngine(tiny_net, config, "cosine")
    W, b = W0, b0
    Wr, br = W0, b0
    for epoch in range(3):
        W, b, _, _ = sched.epoch(W, b, x, d, signs, 4, x)
        ref = make_engine(scaled_rates(tiny_net, lr_factor("cosine", epoch, 3)), config)
        Wr, br, _, _ = ref.epoch(Wr, br, x, d, signs, 4, x)
        for k in W:
            np.testing.assert_allclose(W[k], Wr[k], rtol=0, atol=1e-12)
    assert sched.next_epoch == 3
    # resuming continues the schedule where it stopped
    assert ScheduledEngine(tiny_net, config, "cosine", done_epochs=2).factor == \
        lr_factor("cosine", 2, 3)


def test_brian_scales_its_factor_table_like_rebuilt_rates(tiny_net, tiny_batch):
    """Brian2 is built once: scaling the per-sample factors equals scaling the rates."""
    from cortex_ep.model import energy

    x, d, _ = tiny_batch
    signs = np.where(np.arange(len(x)) % 2, 1.0, -1.0)
    W, b = energy.init_params(tiny_net, 0)
    Wr, br = W, b
    sched = ScheduledEngine(tiny_net, TrainConfig(epochs=2, batch_size=4, engine="brian",
                                                  target="numpy"), "cosine")
    built = sched.engine
    ref_config = TrainConfig(epochs=2, batch_size=4, engine="numpy")
    for epoch in range(2):
        W, b, _, _ = sched.epoch(W, b, x, d, signs, 4, x[:2])
        ref = make_engine(scaled_rates(tiny_net, lr_factor("cosine", epoch, 2)), ref_config)
        Wr, br, _, _ = ref.epoch(Wr, br, x, d, signs, 4, x[:2])
        for k in W:
            np.testing.assert_allclose(W[k], Wr[k], rtol=0, atol=1e-9)
    assert sched.engine is built
