"""The ``cortex-ep`` command: bad input fails early and cleanly; runs write their files."""

import subprocess
import sys

import numpy as np
import pytest
from conftest import make_idx_dir

from cortex_ep import data, io
from cortex_ep.cli.main import main

TINY_MODEL = '''
"""A 16-8-10 network for tests."""
from cortex_ep.model.spec import layered

TRAINING = {"epochs": 2, "batch_size": 5, "free_steps": 15, "nudged_steps": 3}


def network(learning_rates=(0.2, 0.1)):
    return layered([16, 8, 10], learning_rates, name="tiny16")
'''


@pytest.fixture
def tiny_model(tmp_path):
    path = tmp_path / "tiny16.py"
    path.write_text(TINY_MODEL)
    return str(path)


@pytest.fixture
def idx_dir(tmp_path):
    d = tmp_path / "mnist"
    d.mkdir()
    return make_idx_dir(d)


def _fails(argv, capsys, message):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert message in err, err
    return err


BAD_INPUT = [
    (["train", "--beta", "0"], "β must be a finite non-zero number"),
    (["train", "--beta", "nan"], "β must be a finite non-zero number"),
    (["train", "--model", "nope"], "unknown model 'nope'"),
    (["train", "--model", "missing.py"], "model file missing.py does not exist"),
    (["train", "--train-size", "-5"], "--train-size = -5"),
    (["train", "--test-size", "0"], "--test-size = 0"),
    (["train", "--train-size", "5000"], "--train-size = 5000 but only 4000 samples"),
    (["train", "--epochs", "0"], "epochs = 0"),
    (["train", "--batch-size", "-1"], "batch_size = -1"),
    (["train", "--free-steps", "0"], "free_steps = 0"),
    (["train", "--noise", "-0.1"], "noise = -0.1"),
    (["train", "--lr", "0.1", "0.2", "0.3"], "3 learning rates for 2 projections"),
    (["train", "--record", "-1"], "--record -1"),
    (["train", "--data", "/nonexistent/mnist"], "does not exist"),
    (["train", "--validation", "4000"], "--validation = 4000"),
    (["train", "--engine", "torch", "--device", "tpu"], "unknown device 'tpu'"),
    (["train", "--engine", "backprop", "--record", "2"],
     "--record needs an energy-based engine"),
    (["train", "--engine", "gpu"], "argument --engine: invalid choice: 'gpu'"),
    (["train", "--dtype", "float16"], "argument --dtype: invalid choice: 'float16'"),
    (["train", "--record", "2", "--record-epochs", "11"],
     "--record-epochs 11: choose epochs between 0 (before learning) and 10"),
    (["train", "--record-epochs", "1"], "--record-epochs needs --record N"),
    (["train", "--settle-tol", "0"], "--settle-tol 0.0: give a tolerance > 0"),
    (["train", "--resume", "/nonexistent/run"], "no checkpoint.nc there"),
    (["gradcheck", "--beta", "0"], "every β must be finite and > 0"),
    (["gradcheck", "--beta", "-0.001"], "every β must be finite and > 0"),
    (["gradcheck", "--run", "/nonexistent/run"], "has no history.nc"),
    (["gradcheck", "--repeats", "0"], "positive integers"),
    (["gradcheck", "--batch", "5000"], "only 4000 samples"),
    (["train", "--plasticity", "continual", "--engine", "rbp"],
     "learns by the exact gradient: use --plasticity phase"),
    (["train", "--plasticity", "stdp"], "argument --plasticity: invalid choice: 'stdp'"),
    (["train", "--feedback", "random"], "argument --feedback: invalid choice: 'random'"),
    (["gradcheck", "--plasticity", "continual", "--lr", "0"],
     "every learning rate must be finite and > 0"),
    (["gradcheck", "--plasticity", "continual", "--estimator", "random-sign"],
     "the continual check takes --estimator one-sided or symmetric"),
    (["gradcheck", "--nudged-steps", "0"], "positive integers"),
    (["train", "--neurons", "spiking", "--engine", "torch"],
     "spiking neurons run in the Brian2 engine"),
    (["train", "--r-max", "200"], "--r-max: spiking parameters need --neurons spiking"),
    (["train", "--neurons", "spiking", "--r-max", "5000"], "spike probability above 1"),
    (["train", "--neurons", "spiking", "--free-ms", "10.3"], "not a whole number of dt"),
    (["train", "--neurons", "lif"], "argument --neurons: invalid choice: 'lif'"),
    (["train", "--shift", "-1"], "shift = -1: give a whole number of pixels >= 0"),
    (["train", "--shift", "28"], "the images are 28 pixels wide; give a shift below 28"),
]


@pytest.mark.parametrize("argv, message", BAD_INPUT)
def test_bad_input_fails_before_any_output(tmp_path, capsys, argv, message):
    out = tmp_path / "run"
    _fails([*argv, "--out", str(out)], capsys, message)
    assert not out.exists()


def test_beta_zero_names_beta(tmp_path, capsys):
    out = tmp_path / "run"
    err = _fails(["train", "--beta", "0", "--out", str(out)], capsys, "beta = 0")
    assert "β" in err
    assert not out.exists()


def test_unwritable_out(tmp_path, capsys):
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    _fails(["train", "--out", str(blocker / "run")], capsys, "is a file")
    _fails(["train", "--out", str(blocker)], capsys, "is not a directory")


def test_corrupt_and_nan_data(tmp_path, idx_dir, tiny_model, capsys):
    out = tmp_path / "run"
    images = idx_dir / "train-images-idx3-ubyte"
    good = images.read_bytes()
    images.write_bytes(good[:-10])
    _fails(["train", "--model", tiny_model, "--data", str(idx_dir), "--out", str(out)],
           capsys, "truncated or corrupt")
    nan_images = np.full((40, 4, 4), 0.5, dtype=np.float32)
    nan_images[0, 0, 0] = np.nan
    data.write_idx(images, nan_images)
    _fails(["train", "--model", tiny_model, "--data", str(idx_dir), "--out", str(out)],
           capsys, "NaN")
    assert not out.exists()


def test_record_larger_than_test_set(tmp_path, idx_dir, tiny_model, capsys):
    out = tmp_path / "run"
    _fails(["train", "--model", tiny_model, "--data", str(idx_dir), "--record", "21",
            "--out", str(out)], capsys, "exceeds the 20 held-out digits")
    assert not out.exists()


def test_resume_refuses_another_model_and_other_settings(tmp_path, idx_dir, tiny_model,
                                                       capsys):
    run = tmp_path / "run"
    assert main(["train", "--model", tiny_model, "--data", str(idx_dir), "--engine", "numpy",
                 "--epochs", "1", "--out", str(run), "--no-progress"]) == 0
    wider = tmp_path / "wider.py"
    wider.write_text(TINY_MODEL.replace("[16, 8, 10]", "[16, 12, 10]"))
    before = sorted(p.name for p in run.iterdir())
    _fails(["train", "--resume", str(run), "--model", str(wider)], capsys,
           "the checkpoint was written with network = '16-8-10', this run has network = "
           "'16-12-10'; a network cannot change in the middle of a run")
    _fails(["train", "--resume", str(run), "--seed", "7"], capsys,
           "written with seed = 0, this run has seed = 7")
    _fails(["train", "--resume", str(run), "--shift", "1"], capsys,
           "written with shift = 0, this run has shift = 1")
    _fails(["train", "--resume", str(run), "--lr", "0.5"], capsys,
           "learning rates [0.2, 0.1] differ from this run's [0.5, 0.5]")
    _fails(["train", "--resume", str(run), "--out", str(tmp_path / "elsewhere")], capsys,
           "drop --out")
    # starting a new run on top of an old one would mix two runs' files
    _fails(["train", "--model", tiny_model, "--data", str(idx_dir), "--out", str(run)],
           capsys, "already holds a run (its checkpoint.nc); continue it with --resume")
    assert sorted(p.name for p in run.iterdir()) == before
    assert not (tmp_path / "elsewhere").exists()


def test_pixels_must_match_the_model(tmp_path, idx_dir, capsys):
    out = tmp_path / "run"
    _fails(["train", "--data", str(idx_dir), "--out", str(out)], capsys,
           "16 pixels per image, but model 'two_layer' expects 784")


def test_train_writes_history_weights_and_traces(tmp_path, idx_dir, tiny_model, capsys):
    runs = {}
    for engine in ("brian", "numpy"):
        out = tmp_path / engine
        code = main(["train", "--model", tiny_model, "--data", str(idx_dir), "--engine",
                     engine, "--target", "numpy", "--record", "3", "--estimator",
                     "symmetric", "--out", str(out), "--no-progress"])
        assert code == 0
        summary = capsys.readouterr().out
        assert "held-out accuracy" in summary and "(20 digits)" in summary
        runs[engine] = out
    history = io.read_dataset(runs["brian"] / "history.nc")
    assert set(history.data_vars) == {"train_loss", "train_accuracy", "test_loss",
                                      "test_accuracy", "seconds"}
    assert history.epoch.values.tolist() == [1, 2]
    assert history.attrs["estimator"] == "symmetric"
    assert history.attrs["batch_size"] == 5 and history.attrs["free_steps"] == 15
    assert history.attrs["data"] == str(idx_dir)
    other = io.read_dataset(runs["numpy"] / "history.nc")
    # the two engines integrate the same equations: the same learning curve
    for name in ("train_loss", "test_loss", "test_accuracy"):
        np.testing.assert_allclose(history[name], other[name], rtol=1e-9)
    weights = io.read_dataset(runs["brian"] / "weights.nc")
    assert weights["W_x_h1"].shape == (16, 8) and weights["b_y"].shape == (10,)
    traces = io.read_dataset(runs["brian"] / "traces" / "epoch_0002.nc")
    assert traces.s.dims == ("sample", "phase", "time", "unit")
    assert int(traces.epoch) == 2
    assert traces.phase.values.tolist() == ["free", "nudged", "nudged_neg"]
    assert traces.sizes["unit"] == 18 and traces.sizes["sample"] == 3
    assert traces.time.attrs["units"] == "ms"
    assert sorted(p.name for p in runs["brian"].iterdir()) == [
        "checkpoint.nc", "history.nc", "traces", "weights", "weights.nc"]


def test_embedded_default_data_through_the_console_script(tmp_path):
    out = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-m", "cortex_ep.cli", "train", "--train-size", "60",
         "--test-size", "30", "--epochs", "1", "--target", "numpy", "--out", str(out),
         "--no-progress"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "two_layer 784-500-10" in proc.stdout
    history = io.read_dataset(out / "history.nc")
    assert history.attrs["data"] == "embedded" and history.attrs["train_size"] == 60
    assert 0.0 <= float(history.test_accuracy[0]) <= 1.0


def test_torch_engines_through_the_cli(tmp_path, idx_dir, tiny_model, capsys):
    runs = {}
    for engine in ("torch", "numpy", "rbp", "backprop"):
        out = tmp_path / engine
        assert main(["train", "--model", tiny_model, "--data", str(idx_dir), "--engine",
                     engine, "--dtype", "float64", "--out", str(out), "--no-progress"]) == 0
        runs[engine] = io.read_dataset(out / "history.nc")
    summary = capsys.readouterr().out
    assert "recurrent backprop" in summary and "feedforward backprop" in summary
    np.testing.assert_allclose(runs["torch"].test_loss, runs["numpy"].test_loss, rtol=1e-9)
    assert runs["backprop"].attrs["bp_loss"] == "cross_entropy"
    assert runs["rbp"].attrs["engine"] == "rbp"


def test_gradcheck_fresh_and_from_a_run(tmp_path, idx_dir, tiny_model, capsys):
    run = tmp_path / "run"
    assert main(["train", "--model", tiny_model, "--data", str(idx_dir), "--engine", "torch",
                 "--out", str(run), "--no-progress"]) == 0
    # the tiny model lives in a file: --run resolves it through the history's attrs
    out = tmp_path / "gc"
    assert main(["gradcheck", "--run", str(run), "--data", str(idx_dir), "--batch", "10",
                 "--beta", "1e-4", "1e-3", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "log-log slope" in text and "units on a face of the box" in text
    ds = io.read_dataset(out / "gradcheck.nc")
    assert ds.sizes["beta"] == 2 and ds.attrs["batch"] == 10
    assert ds.attrs["source"] == str(run)


def test_gradcheck_rejects_weights_of_another_model(tmp_path, idx_dir, tiny_model, capsys):
    run = tmp_path / "run"
    assert main(["train", "--model", tiny_model, "--data", str(idx_dir), "--engine", "numpy",
                 "--epochs", "1", "--out", str(run), "--no-progress"]) == 0
    history = io.read_dataset(run / "history.nc")
    history.attrs["model"] = "two_layer"
    io.write_dataset(history, run / "history.nc")
    _fails(["gradcheck", "--run", str(run), "--out", str(tmp_path / "gc")], capsys,
           "do not fit model 'two_layer'")


def test_continual_separate_run_and_its_continual_gradcheck(tmp_path, idx_dir, tiny_model,
                                                            capsys):
    run = tmp_path / "run"
    assert main(["train", "--model", tiny_model, "--data", str(idx_dir), "--engine", "numpy",
                 "--plasticity", "continual", "--feedback", "separate", "--feedback-init",
                 "random", "--out", str(run), "--no-progress"]) == 0
    assert "continual rule, separate feedback" in capsys.readouterr().out
    weights = io.read_dataset(run / "weights.nc")
    assert weights["B_h1_y"].dims == ("h1_unit", "y_unit")
    assert not np.allclose(weights["B_h1_y"], weights["W_h1_y"])
    history = io.read_dataset(run / "history.nc")
    assert history.attrs["plasticity"] == "continual" and history.attrs["feedback"]
    out = tmp_path / "gc"
    assert main(["gradcheck", "--run", str(run), "--data", str(idx_dir), "--batch", "4",
                 "--plasticity", "continual", "--estimator", "symmetric", "--lr", "1e-6",
                 "1e-1", "--beta", "0.01", "--nudged-steps", "40", "--out", str(out)]) == 0
    assert "continual gradcheck 16-8-10" in capsys.readouterr().out
    ds = io.read_dataset(out / "gradcheck.nc")
    assert ds.cosine.dims == ("estimator", "lr", "beta", "param")
    assert "B_h1_y" in ds.param.values
