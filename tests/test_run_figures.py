"""``cortex-ep plot`` and ``cortex-ep info`` on run directories with and without traces."""

import re
import subprocess
import sys

import numpy as np
import pytest
from conftest import make_idx_dir

from cortex_ep import io
from cortex_ep.cli.main import main
from cortex_ep.recordings.figures import first_hidden_weights, probe_samples
from cortex_ep.recordings.run import open_run

COLUMN_MODEL = '''
from cortex_ep.model.spec import Network, Population, Projection

TRAINING = {"epochs": 2, "batch_size": 5, "free_steps": 20, "nudged_steps": 3}


def network():
    return Network(populations=(Population("x", 16, "input"),
                                Population("h", 8, "hidden", columns=2),
                                Population("y", 10, "output")),
                   projections=(Projection("x", "h", lr=0.2), Projection("h", "y", lr=0.1)),
                   name="tinycols")
'''


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two tiny runs of a 16-8-10 network with 2 columns: with and without traces."""
    root = tmp_path_factory.mktemp("runs")
    (root / "mnist").mkdir()
    idx = make_idx_dir(root / "mnist")
    model = root / "tinycols.py"
    model.write_text(COLUMN_MODEL)
    made = {}
    for name, extra in (("plain", []), ("traced", ["--record", "4", "--record-epochs", "0",
                                                   "2"])):
        made[name] = root / name
        assert main(["train", "--model", str(model), "--data", str(idx), "--engine", "numpy",
                     "--out", str(made[name]), "--no-progress", *extra]) == 0
    return made


def _pngs(directory):
    return sorted(p.name for p in directory.glob("*.png"))


def test_plot_without_traces_draws_curves_and_fields(runs, capsys):
    assert main(["plot", str(runs["plain"])]) == 0
    figures = runs["plain"] / "figures"
    assert _pngs(figures) == ["learning_curves.png", "receptive_fields.png"]
    for png in figures.glob("*.png"):
        assert png.stat().st_size > 5000 and png.read_bytes()[:4] == b"\x89PNG"
    assert capsys.readouterr().out.count("written: ") == 2


def test_plot_with_traces_adds_the_trajectories(runs, tmp_path, capsys):
    out = tmp_path / "elsewhere"
    assert main(["plot", str(runs["traced"]), "--out", str(out)]) == 0
    assert _pngs(out) == ["learning_curves.png", "receptive_fields.png", "trajectories.png"]
    assert all(p.stat().st_size > 5000 for p in out.glob("*.png"))
    assert not (runs["traced"] / "figures").exists()


def test_the_figures_draw_what_they_say(runs):
    run = open_run(runs["traced"], chunks=False)
    W = first_hidden_weights(run.weights, run.attrs)
    assert W.dims == ("x_unit", "h_unit") and W.shape == (16, 8)
    np.testing.assert_array_equal(W["h_column"], [0, 0, 0, 0, 1, 1, 1, 1])
    chosen = probe_samples(run.traces.isel(epoch=-1), 3)
    labels = run.traces.label.values[chosen]
    assert len(chosen) == 3 and len(set(labels.tolist())) == 3


def test_info_prints_settings_epochs_accuracy_and_time(runs, capsys):
    assert main(["info", str(runs["traced"])]) == 0
    text = capsys.readouterr().out
    history = io.read_dataset(runs["traced"] / "history.nc")
    best = 100 * float(history.test_accuracy.max())
    last = 100 * float(history.test_accuracy[-1])
    assert "epochs finished: 2 of 2" in text
    assert f"last {last:.1f}% (epoch 2)" in text and f"best {best:.1f}%" in text
    assert re.search(r"time: \d+\.\d s \(\d+\.\d s per epoch\)", text)
    assert "recorded after epochs 0, 2" in text
    assert "  estimator: random-sign" in text and "  batch_size: 5" in text
    assert "--engine numpy" in text


def test_info_into_a_closed_pipe_ends_without_a_traceback(runs):
    """`cortex-ep info RUN | head -1`: the reader leaves early; no traceback, status 141."""
    proc = subprocess.Popen([sys.executable, "-m", "cortex_ep.cli", "info", str(runs["traced"])],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # the reader is gone before the summary is written
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141
    assert "Traceback" not in err and "BrokenPipeError" not in err, err


@pytest.mark.parametrize("command", ["plot", "info"])
def test_a_directory_that_is_no_run_fails_cleanly(tmp_path, capsys, command):
    with pytest.raises(SystemExit) as exc:
        main([command, str(tmp_path)])
    assert exc.value.code == 2
    assert "has no history.nc" in capsys.readouterr().err
