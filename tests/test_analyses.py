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
