"""How separate feedback learns (shared, fixed, Kolen–Pollack): the description
refuses bad settings, the engines agree with learning, and ``B − W`` shrinks as
the rule says."""

import numpy as np
import pytest
from conftest import TINY16_MODEL, make_idx_dir, refused
from test_local_learning import REL, _batch, _params, _three_engines

from cortex_ep import io
from cortex_ep.cli.main import main
from cortex_ep.engines.brian.engine import BrianEngine
from cortex_ep.engines.reference import ReferenceEngine
from cortex_ep.model import energy
from cortex_ep.model.defaults import KOLEN_POLLACK_DECAY
from cortex_ep.model.estimators import Estimator
from cortex_ep.model.neurons import IntegrateAndFire, Spiking
from cortex_ep.model.plasticity import Plasticity
from cortex_ep.model.spec import SpecError, layered, with_feedback


def _net(learning="shared", decay=None, lateral=False):
    return layered([6, 5, 4, 3], [0.1, 0.2, 0.05], tau=10.0, dt=5.0, name="tiny4",
                   feedback="separate", feedback_init="random", init_gain=1.0,
                   feedback_learning=learning, feedback_decay=decay,
                   lateral_lr={1: 0.3} if lateral else None)


@pytest.mark.parametrize("change,words", [
    (dict(feedback="tied", learning="fixed"), "tied feedback"),
    (dict(learning="fixd"), "choose one of shared, fixed, kolen-pollack"),
    (dict(learning="shared", decay=0.1), "belongs to 'kolen-pollack'"),
    (dict(learning="kolen-pollack", decay=-0.1), "finite value >= 0"),
    (dict(learning="kolen-pollack", decay=float("nan")), "finite value >= 0"),
    (dict(learning="kolen-pollack", decay=10.0), "lr · λ = 0.2 · 10 >= 1"),
])
def test_bad_feedback_learning_is_refused_with_the_fix(change, words):
    net = layered([6, 5, 4, 3], [0.1, 0.2, 0.05], name="tiny4")
    with pytest.raises(SpecError, match=words):
        with_feedback(net, change.get("feedback", "separate"), "random",
                      change.get("learning", "shared"), change.get("decay"))


def test_kolen_pollack_takes_the_validated_decay_and_only_between_dynamic_layers():
    net = _net("kolen-pollack")
    assert [p.decay for p in net.projections] == [0.0] + [KOLEN_POLLACK_DECAY] * 2
    factors = energy.weight_decay_factors(net)
    assert factors == {"h1_h2": 1 - 0.2 * KOLEN_POLLACK_DECAY,
                       "h1_h2_feedback": 1 - 0.2 * KOLEN_POLLACK_DECAY,
                       "h2_y": 1 - 0.05 * KOLEN_POLLACK_DECAY,
                       "h2_y_feedback": 1 - 0.05 * KOLEN_POLLACK_DECAY}
    assert energy.weight_learning_rates(_net("fixed"))["h2_y_feedback"] == 0.0


@pytest.mark.parametrize("rule", ["phase", "continual"])
def test_kolen_pollack_shrinks_b_minus_w_by_one_minus_lr_lambda_per_batch(rule):
    """Both matrices get the same local update, then both decay: B − W is its
    initial value times (1 − lr·λ) per batch, while W itself learns."""
    lam = 0.7
    net = _net("kolen-pollack", lam)
    W, b = _params(net)
    x, d = _batch()
    est = Estimator("one-sided", 0.5)
    engine = ReferenceEngine(net, est, REL, plasticity=Plasticity(rule))
    W1, _, _, _ = engine.epoch(W, b, x, d, np.ones(8), 3, x[:1])  # batches of 3, 3, 2
    for proj in net.separate:
        B = energy.feedback_name(proj.name)
        shrink = (1 - proj.lr * lam) ** 3
        np.testing.assert_allclose(W1[B] - W1[proj.name], shrink * (W[B] - W[proj.name]),
                                   rtol=0, atol=1e-14)
        assert np.abs(W1[proj.name] - shrink * W[proj.name]).max() > 1e-3  # W learned


@pytest.mark.parametrize("rule", ["phase", "continual"])
def test_fixed_feedback_never_changes_while_w_learns(rule):
    net = _net("fixed")
    W, b = _params(net)
    x, d = _batch()
    engine = ReferenceEngine(net, Estimator("one-sided", 0.5), REL,
                             plasticity=Plasticity(rule))
    W1, _, _, _ = engine.epoch(W, b, x, d, np.ones(8), 4, x[:1])
    for proj in net.separate:
        np.testing.assert_array_equal(W1[energy.feedback_name(proj.name)],
                                      W[energy.feedback_name(proj.name)])
        assert np.abs(W1[proj.name] - W[proj.name]).max() > 1e-3


@pytest.mark.parametrize("rule,learning,estimator", [
    ("phase", "fixed", "one-sided"), ("phase", "kolen-pollack", "symmetric"),
    ("continual", "fixed", "random-sign"), ("continual", "kolen-pollack", "symmetric"),
    ("continual", "kolen-pollack", "one-sided")])
def test_brian_twin_and_reference_agree_for_every_feedback_learning(rule, learning,
                                                                    estimator, tmp_path):
    net = _net(learning, 0.9 if learning == "kolen-pollack" else None, lateral=True)
    W, b = _params(net)
    x, d = _batch()
    est = Estimator(estimator, 0.5)
    signs = est.signs(len(x), np.random.default_rng(3))
    brian, ref, twin = _three_engines(net, est, rule, x, d, W, b, signs, 3, tmp_path)
    np.testing.assert_allclose(brian[2], ref[2], atol=1e-12)
    np.testing.assert_allclose(twin[2], ref[2], atol=1e-12)
    for k in W:
        learned = np.abs(ref[0][k] - W[k]).max()
        assert (learned == 0) if (learning == "fixed" and k.endswith("_feedback")) \
            else (learned > 1e-3), k
        np.testing.assert_allclose(brian[0][k], ref[0][k], rtol=0, atol=1e-9, err_msg=k)
        np.testing.assert_allclose(twin[0][k], ref[0][k], rtol=0, atol=1e-9, err_msg=k)
    for k in b:
        np.testing.assert_allclose(brian[1][k], ref[1][k], rtol=0, atol=1e-9, err_msg=k)
        np.testing.assert_allclose(twin[1][k], ref[1][k], rtol=0, atol=1e-9, err_msg=k)


@pytest.mark.parametrize("units,rule,learning", [
    ("spiking", "continual", "kolen-pollack"), ("if", "phase", "fixed"),
    ("if", "continual", "kolen-pollack")])
def test_spiking_brian2_learns_separate_feedback_by_each_mode(units, rule, learning,
                                                              tmp_path):
    """Spiking units keep separate feedback: fixed B stays put, Kolen–Pollack
    shrinks B − W by the batch factor (spikes feed both matrices alike)."""
    lam = 0.9
    net = layered([6, 5, 3], [0.3, 0.1], tau=10.0, dt=5.0, name="spk",
                  feedback="separate", feedback_init="random", init_gain=1.0,
                  feedback_learning=learning,
                  feedback_decay=lam if learning == "kolen-pollack" else None)
    kind = IntegrateAndFire if units == "if" else Spiking
    spikes = kind(r_max_hz=1000.0, dt_ms=0.5, free_ms=20.0, nudged_ms=10.0)
    W, b = _params(net)
    x, d = _batch()
    est = Estimator("symmetric", 1.0)
    engine = BrianEngine(net, est, REL, target="numpy", build_root=tmp_path,
                         spikes=spikes, plasticity=Plasticity(rule))
    W1, _, _, _ = engine.epoch(W, b, x, d, np.ones(8), 4, x[:1])
    B = energy.feedback_name("h1_y")
    assert np.abs(W1["h1_y"] - W["h1_y"]).max() > 1e-4
    if learning == "fixed":
        np.testing.assert_array_equal(W1[B], W[B])
    else:
        np.testing.assert_allclose(W1[B] - W1["h1_y"],
                                   (1 - 0.1 * lam) ** 2 * (W[B] - W["h1_y"]),
                                   rtol=0, atol=1e-12)


# ------------------------------------------------------------ command line
def _inputs(tmp_path):
    model = tmp_path / "tiny16.py"
    model.write_text(TINY16_MODEL)
    (tmp_path / "idx").mkdir()
    return str(model), str(make_idx_dir(tmp_path / "idx"))


def test_kolen_pollack_run_keeps_its_rule_resumes_and_gradchecks(tmp_path, capsys):
    model, idx = _inputs(tmp_path)
    run = tmp_path / "run"
    train = ["train", "--model", model, "--data", idx, "--engine", "numpy", "--out", str(run),
             "--no-progress"]
    assert main([*train, "--epochs", "1", "--feedback", "separate", "--feedback-init",
                 "random", "--feedback-learning", "kolen-pollack",
                 "--feedback-decay", "0.5"]) == 0
    assert "separate feedback learning kolen-pollack λ=0.5" in capsys.readouterr().out
    assert io.read_dataset(run / "history.nc").attrs["feedback"] == \
        "h1_y:random:kolen-pollack:0.5"
    first = io.read_dataset(run / "weights.nc")
    # 40 digits in batches of 5: B − W shrank by (1 − 0.1·0.5) per batch, 8 times
    assert main(["train", "--resume", str(run), "--epochs", "2", "--no-progress"]) == 0
    second = io.read_dataset(run / "weights.nc")
    np.testing.assert_allclose(second.B_h1_y - second.W_h1_y,
                               0.95 ** 8 * (first.B_h1_y - first.W_h1_y), atol=1e-12)
    out = tmp_path / "gc"
    assert main(["gradcheck", "--run", str(run), "--data", idx, "--batch", "4",
                 "--beta", "0.01", "--repeats", "1", "--out", str(out)]) == 0
    assert "B_h1_y" in io.read_dataset(out / "gradcheck.nc").param.values


@pytest.mark.parametrize("options,words", [
    (["--feedback-learning", "fixed"], "has no separate feedback matrix"),
    (["--feedback", "separate", "--feedback-learning", "kolen-pollack",
      "--feedback-decay", "-1"], "finite value >= 0"),
    (["--feedback", "separate", "--feedback-learning", "kolen-pollack",
      "--feedback-decay", "inf"], "finite value >= 0"),
    (["--feedback", "separate", "--feedback-decay", "0.1"], "belongs to 'kolen-pollack'"),
])
def test_bad_feedback_learning_options_are_refused_before_any_work(options, words,
                                                                   tmp_path, capsys):
    model, idx = _inputs(tmp_path)
    run = tmp_path / "run"
    err = refused(["train", "--model", model, "--data", idx, "--engine", "numpy",
                   "--out", str(run), "--no-progress", *options], capsys)
    assert words in err
    assert not run.exists()


@pytest.mark.parametrize("rule", ["phase", "continual"])
def test_brian2_decays_with_the_learning_rate_schedule(rule):
    """Brian2 is built once under a schedule: its decay follows the epoch's rate
    factor as the rebuilt reference's 1 − (factor · lr) · λ does."""
    from cortex_ep import TrainConfig
    from cortex_ep.engines.registry import make_engine
    from cortex_ep.learning.schedule import ScheduledEngine, lr_factor, scaled_rates

    net = _net("kolen-pollack", 0.9)
    W, b = _params(net)
    Wr, br = W, b
    x, d = _batch()
    signs = np.ones(len(x))
    common = dict(epochs=2, batch_size=4, relaxation=REL, plasticity=rule,
                  estimator=Estimator("one-sided", 0.5))
    sched = ScheduledEngine(net, TrainConfig(engine="brian", target="numpy", **common),
                            "cosine")
    for epoch in range(2):
        W, b, _, _ = sched.epoch(W, b, x, d, signs, 4, x[:2])
        ref = make_engine(scaled_rates(net, lr_factor("cosine", epoch, 2)),
                          TrainConfig(engine="numpy", **common))
        Wr, br, _, _ = ref.epoch(Wr, br, x, d, signs, 4, x[:2])
        for k in W:
            np.testing.assert_allclose(W[k], Wr[k], rtol=0, atol=1e-9, err_msg=k)
