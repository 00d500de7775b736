"""Every analysis script runs end to end in its --quick mode."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cortex_ep import io

ANALYSES = Path(__file__).resolve().parents[1] / "analyses"


def _run(script, out):
    proc = subprocess.run([sys.executable, str(ANALYSES / script), "--quick", "--out",
                           str(out), "--no-progress", "--workers", "2"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def test_beta_bias_variance_quick(tmp_path):
    text = _run("beta_bias_variance.py", tmp_path)
    assert "fitted bias slopes" in text and "0.001 or 0.009?" in text
    ds = io.read_dataset(tmp_path / "beta_bias_variance.nc")
    assert set(ds.bias.dims) == {"activation", "state", "noise", "seed", "beta", "estimator",
                                 "param"}
    assert np.all(ds.variance.sel(noise=0.0) == 0)
    assert float(ds.variance.sel(noise=0.003).mean()) > 0
    # trained network, no noise: the orders of the two estimators' bias
    trained = ds.bias.sel(state="trained", noise=0.0, activation="logistic").mean("seed")
    small = trained.sel(beta=[1e-4, 1e-3])
    ratio = small.isel(beta=1) / small.isel(beta=0)
    assert 8 < float(ratio.sel(estimator="one-sided", param="W_h1_y")) < 12
    assert 80 < float(ratio.sel(estimator="symmetric", param="W_h1_y")) < 120
    for name in ("beta_bias_variance_hard_sigmoid.png", "beta_bias_variance_logistic.png"):
        assert (tmp_path / name).stat().st_size > 10_000


def test_ep_vs_backprop_quick(tmp_path):
    text = _run("ep_vs_backprop.py", tmp_path)
    assert "epochs to 90%" in text
    ds = io.read_dataset(tmp_path / "ep_vs_backprop.nc")
    assert ds.test_accuracy.dims == ("algorithm", "seed", "epoch")
    assert ds.sizes == {"algorithm": 5, "seed": 2, "epoch": 3}
    assert float(ds.test_accuracy.isel(epoch=-1).min()) > 0.3  # everyone learns something
    assert (tmp_path / "ep_vs_backprop.png").stat().st_size > 10_000


def test_batch_size_lr_quick(tmp_path):
    text = _run("batch_size_lr.py", tmp_path)
    assert "best final held-out accuracy" in text
    ds = io.read_dataset(tmp_path / "batch_size_lr.nc")
    assert ds.test_accuracy.dims == ("algorithm", "batch_size", "lr", "seed", "epoch")
    # the batch size really changes the run: different cells, different histories
    a = ds.test_loss.sel(algorithm="EP random-sign", lr=2.0, seed=0)
    assert not np.allclose(a.sel(batch_size=10), a.sel(batch_size=50))
    assert (tmp_path / "batch_size_lr.png").stat().st_size > 10_000


def test_columns_quick(tmp_path):
    proc = subprocess.run([sys.executable, str(ANALYSES / "columns.py"), "--quick", "--out",
                           str(tmp_path), "--no-progress"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "mean column selectivity index" in proc.stdout
    ds = io.read_dataset(tmp_path / "column_metrics.nc")
    epochs, n_columns, probe = [0, 1, 2], 25, 20
    assert ds.epoch.values.tolist() == epochs
    assert ds.sizes["column"] == n_columns and ds.sizes["sample"] == probe
    assert ds.activity.dims == ("epoch", "phase", "column")
    assert ds.difference.dims == ds.abs_difference.dims == ("epoch", "column", "time")
    assert ds.tuning.dims == ("epoch", "column", "digit") and ds.sizes["digit"] == 10
    assert ds.similarity.dims == ("epoch", "column", "column_other")
    for name in ("selectivity", "mutual_information", "mutual_information_shuffled",
                 "abs_final_difference", "preferred_digit"):
        assert ds[name].dims == ("epoch", "column"), name
    # defined everywhere: the probe's responses and the column statistics
    for name in ("activity", "difference", "abs_difference", "tuning", "selectivity",
                 "mutual_information", "mutual_information_shuffled", "abs_final_difference",
                 "probe_accuracy", "mean_similarity"):
        assert np.isfinite(ds[name].values).all(), name
    # undefined before the first epoch (no history, no earlier weights), defined after
    for name in ("test_accuracy", "weight_change", "relative_weight_change",
                 "difference_weight_correlation"):
        assert np.isnan(ds[name].sel(epoch=0)).all(), name
        assert np.isfinite(ds[name].sel(epoch=[1, 2])).all(), name
    assert ((ds.selectivity >= 0) & (ds.selectivity <= 1)).all()
    assert (ds.mutual_information >= 0).all() and (ds.abs_final_difference > 0).all()
    assert float(ds.test_accuracy.sel(epoch=2)) > 0.3  # it learns
    assert (ds.weight_change.sel(epoch=[1, 2]) > 0).all()
    assert ds.difference.time.values[0] == 0 and np.allclose(ds.difference.isel(time=0), 0)
    for name in ("columns_selectivity.png", "columns_difference.png", "columns_tuning.png",
                 "columns_learning.png"):
        assert (tmp_path / name).stat().st_size > 10_000, name


def test_local_learning_quick(tmp_path):
    text = _run("local_learning.py", tmp_path)
    assert "continual update against the exact gradient" in text
    ds = io.read_dataset(tmp_path / "local_learning.nc")
    assert ds.test_accuracy.dims == ("rule", "feedback", "seed", "epoch")
    acc = ds.test_accuracy.isel(epoch=-1)
    assert float(acc.min()) > 0.2  # every combination learns something
    # separate feedback started as the transpose has the tied network's dynamics
    for rule in ("phase", "continual"):
        np.testing.assert_allclose(acc.sel(rule=rule, feedback="separate-transpose"),
                                   acc.sel(rule=rule, feedback="tied"))
    assert float(ds.alignment_angle.sel(feedback="separate-random").isel(epoch=0).min()) > 60
    cos = io.read_dataset(tmp_path / "continual_cosine.nc")
    smallest = cos.cosine.isel(lr=0)
    np.testing.assert_allclose(smallest, cos.limit_cosine, atol=1e-3)
    for name in ("local_learning_accuracy.png", "continual_cosine.png",
                 "feedback_alignment.png"):
        assert (tmp_path / name).stat().st_size > 10_000


def test_spiking_quick(tmp_path):
    # its spike statistics are Elephant's: the optional extra .[nwb]
    pytest.importorskip("elephant")
    proc = subprocess.run([sys.executable, str(ANALYSES / "spiking.py"), "--quick", "--out",
                           str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "spikes/phase at ρ=1" in proc.stdout
    ds = io.read_dataset(tmp_path / "spiking.nc")
    assert ds.cosine.dims == ("setting", "param")
    assert np.all(np.abs(ds.cosine) <= 1) and np.all(ds.spikes_per_sample > 0)
    # more spikes per phase: a truer update
    assert float(ds.cosine_all[-1]) > float(ds.cosine_all[0])
    window = io.read_dataset(tmp_path / "stdp_window.nc")
    dw = window.dw
    # a pair long before the phase ends has decayed by the end: no change; a pair late in
    # the phase potentiates, one whose traces decay into it depresses
    assert float(dw.sel(pre_time=30.0, delta_t=0.0)) > 0
    assert float(dw.sel(pre_time=-10.0, delta_t=0.0)) < 0
    for name in ("spiking_cosine.png", "stdp_window.png"):
        assert (tmp_path / name).stat().st_size > 10_000


def test_full_mnist_table_groups_seeds(tmp_path):
    """The results table of recorded runs: seeds grouped, mean ± sd as numpy computes it."""
    from cortex_ep.data import Digits
    from cortex_ep.learning.loop import TrainConfig, train
    from cortex_ep.model.spec import layered

    rng = np.random.default_rng(0)
    y = np.arange(60) % 4
    x = np.zeros((60, 16))
    x[np.arange(60), 4 + y] = 1.0
    x = np.clip(x + rng.uniform(0, 0.3, x.shape), 0, 1)
    digits = Digits(x[:40], y[:40], x[40:], y[40:], "synthetic")
    net = layered([16, 8, 4], [0.2, 0.1], name="tiny_table")
    finals = {}
    for shift, seed in ((1, 0), (1, 1), (0, 0)):
        out = tmp_path / f"shift{shift}_s{seed}"
        history, _, _ = train(net, digits, TrainConfig(epochs=2, batch_size=5, seed=seed,
                                                       engine="numpy", shift=shift),
                              out=out, progress=False)
        finals.setdefault(shift, []).append(100 * float(history.test_accuracy[-1]))
    figure = tmp_path / "curves.png"
    proc = subprocess.run([sys.executable, str(ANALYSES / "full_mnist.py"),
                           *map(str, sorted(tmp_path.glob("shift*"))), "--figure",
                           str(figure)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = [line for line in proc.stdout.splitlines() if line.startswith("| 16-8-4")]
    assert len(rows) == 2
    shifted = next(r for r in rows if "| 1 |" in r)
    mean, sd = np.mean(finals[1]), np.std(finals[1], ddof=1)
    assert f"{mean:.2f} ± {sd:.2f} %" in shifted and "(seeds 0, 1)" in shifted
    assert figure.stat().st_size > 10_000
    bad = subprocess.run([sys.executable, str(ANALYSES / "full_mnist.py"), str(tmp_path)],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "holds a history.nc" in bad.stderr
    unfinished = tmp_path / "shift0_s0" / "history.nc"  # as if stopped after 2 of 5 epochs
    history = io.read_dataset(unfinished)
    history.attrs["epochs"] = 5
    io.write_dataset(history, unfinished)
    nothing_to_draw = tmp_path / "none.png"
    bad = subprocess.run([sys.executable, str(ANALYSES / "full_mnist.py"),
                          str(unfinished.parent), "--figure", str(nothing_to_draw)],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "leave out --figure" in bad.stderr, bad.stderr[-2000:]
    assert not nothing_to_draw.exists()


def test_full_mnist_spiking_rows_and_accuracy_per_epoch(tmp_path):
    """A spiking twin run is a row of its own, named by its units, rate and phases;
    ``--per-epoch`` lists every run's test accuracy at every epoch."""
    from cortex_ep.data import Digits
    from cortex_ep.learning.loop import TrainConfig, train
    from cortex_ep.model.estimators import Estimator
    from cortex_ep.model.neurons import IntegrateAndFire
    from cortex_ep.model.spec import layered

    rng = np.random.default_rng(0)
    y = np.arange(60) % 4
    x = np.clip(np.eye(16)[4 + y] + rng.uniform(0, 0.3, (60, 16)), 0, 1)
    digits = Digits(x[:40], y[:40], x[40:], y[40:], "synthetic")
    net = layered([16, 8, 4], [0.2, 0.1], name="tiny_table")
    curves = {}
    for name, config in {
            "rate": TrainConfig(epochs=2, batch_size=5, engine="torch"),
            "if": TrainConfig(epochs=2, batch_size=5, engine="torch",
                              spiking=IntegrateAndFire(r_max_hz=500.0, free_ms=20.0,
                                                       nudged_ms=10.0),
                              estimator=Estimator("symmetric", 1.0))}.items():
        history, _, _ = train(net, digits, config, out=tmp_path / name, progress=False)
        curves[name] = 100 * history.test_accuracy.values
    proc = subprocess.run([sys.executable, str(ANALYSES / "full_mnist.py"),
                           str(tmp_path / "rate"), str(tmp_path / "if"), "--per-epoch"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    spiking = "spiking EP, torch twin, integrate-and-fire at 500 Hz, 20 / 10 ms phases"
    table_rows = [line for line in lines if line.count("|") > 10]
    assert sum(spiking in line for line in table_rows) == 1
    per_epoch = {name: next(line for line in lines
                            if line.startswith("| 16-8-4") and line.count("|") == 4
                            and (spiking in line) == (name == "if"))
                 for name in curves}
    for name, line in per_epoch.items():
        assert line.endswith(" | ".join(f"{a:.2f}" for a in curves[name]) + " |")


def test_dead_units_quick(tmp_path):
    text = _run("dead_units.py", tmp_path)
    assert "(dead output units / classes never predicted)" in text
    ds = io.read_dataset(tmp_path / "dead_units_small_beta.nc")
    assert ds.test_accuracy.dims == ("setting", "estimator", "seed", "epoch")
    assert list(ds.setting.values) == ["validated rates", "small-β rates"]
    assert ds.dead_outputs.dims == ("setting", "estimator", "seed")
    assert ((ds.dead_outputs >= 0) & (ds.dead_outputs <= 10)).all()
    # the two rate settings are different runs
    assert not np.allclose(ds.test_loss.sel(setting="validated rates"),
                           ds.test_loss.sel(setting="small-β rates"))
    assert io.read_dataset(tmp_path / "dead_units_defaults.nc").sizes["model"] == 1
    assert (tmp_path / "dead_units.png").stat().st_size > 10_000
    # a recorded run: its dead units counted from its weights
    run = tmp_path / "run"
    from cortex_ep.cli.main import main

    assert main(["train", "--engine", "torch", "--train-size", "40", "--test-size", "20",
                 "--epochs", "1", "--out", str(run), "--no-progress",
                 "--on-divergence", "warn"]) == 0
    proc = subprocess.run([sys.executable, str(ANALYSES / "dead_units.py"), "--runs",
                           str(run)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "dead output units in all 1 runs:" in proc.stdout


def test_feedback_learning_quick(tmp_path):
    text = _run("feedback_learning.py", tmp_path)
    assert "kolen-pollack λ=0.005" in text and "vs tied" in text
    ds = io.read_dataset(tmp_path / "feedback_learning.nc")
    assert list(ds.feedback.values[:3]) == ["tied", "shared", "fixed"]
    assert ds.alignment_angle.dims == ("feedback", "seed", "epoch")
    assert np.isnan(ds.alignment_angle.sel(feedback="tied")).all()
    start = ds.alignment_angle.sel(epoch=0).drop_sel(feedback="tied")
    assert float(start.min()) > 80  # a random B starts nearly orthogonal to W
    # a fixed B never moves, so its angle to the learning W cannot close as fast as
    # Kolen–Pollack's at the strongest decay
    last = ds.alignment_angle.isel(epoch=-1).mean("seed")
    assert float(last.sel(feedback="kolen-pollack:0.02")) < float(last.sel(feedback="fixed"))
    cos = ds.gradient_cosine.sel(param="W_x_h1", feedback="tied")
    assert float(cos.min()) > 0.99  # tied feedback: EP at small β is the gradient
    assert (tmp_path / "feedback_learning.png").stat().st_size > 10_000
