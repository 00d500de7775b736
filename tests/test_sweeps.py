"""The sweep runner: grid -> Dataset, cells on disk, resumption after a kill."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import xarray as xr

from cortex_ep import sweeps


def _cell(a, b, offset=0.0):
    return xr.Dataset({"value": ("epoch", np.array([a * 10.0 + len(b), offset]))},
                      coords={"epoch": [1, 2]}, attrs={"note": "demo"})


@pytest.fixture(scope="module")
def threaded_client():
    from dask.distributed import Client

    client = Client(processes=False, n_workers=1, threads_per_worker=2,
                    dashboard_address=None)
    yield client
    client.close()


def test_grid_cells_and_keys():
    grid = {"a": [1, 2], "b": ["x", "yy"]}
    combos = sweeps.cells(grid)
    assert combos == [{"a": 1, "b": "x"}, {"a": 1, "b": "yy"}, {"a": 2, "b": "x"},
                      {"a": 2, "b": "yy"}]
    assert sweeps.cell_key({"a": 1, "b": "x"}) == sweeps.cell_key({"b": "x", "a": 1})
    assert sweeps.cell_key({"a": 1}) != sweeps.cell_key({"a": 2})
    with pytest.raises(ValueError, match="repeats a value"):
        sweeps.cells({"a": [1, 1]})
    with pytest.raises(ValueError, match="has no values"):
        sweeps.cells({"a": []})


def test_run_sweep_combines_cells(tmp_path, threaded_client):
    grid = {"a": [1, 2, 3], "b": ["x", "yy"]}
    ds = sweeps.run_sweep(grid, _cell, tmp_path, client=threaded_client, progress=False,
                          fixed={"offset": 0.5})
    assert ds.value.dims == ("a", "b", "epoch")
    expected = np.array([[[a * 10.0 + len(b), 0.5] for b in grid["b"]] for a in grid["a"]])
    np.testing.assert_array_equal(ds.value.values, expected)
    assert ds.b.values.tolist() == ["x", "yy"] and ds.attrs["note"] == "demo"
    assert len(list(tmp_path.glob("*.nc"))) == 6
    # a second call finds every cell on disk and computes nothing
    again = sweeps.run_sweep(grid, _cell, tmp_path, client=None, progress=False)
    xr.testing.assert_identical(again, ds)


SCRIPT = """
import sys, time
from pathlib import Path
import numpy as np, xarray as xr
from cortex_ep import sweeps

LOG = Path(sys.argv[2])

def slow_cell(a):
    with open(LOG, "a") as fh:
        fh.write(f"start {a}\\n")
    time.sleep(1.0)
    return xr.Dataset({"square": ((), float(a * a))})

if __name__ == "__main__":
    ds = sweeps.run_sweep({"a": list(range(8))}, slow_cell, sys.argv[1], n_workers=2,
                          progress=False)
    print("result", ds.square.values.tolist())
"""


def test_killed_sweep_resumes_with_only_the_unfinished_cells(tmp_path):
    script = tmp_path / "sweep_script.py"
    script.write_text(textwrap.dedent(SCRIPT))
    cells_dir, log = tmp_path / "cells", tmp_path / "log.txt"
    cmd = [sys.executable, str(script), str(cells_dir), str(log)]
    proc = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while time.time() < deadline and len(list(cells_dir.glob("*.nc"))) < 3:
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    finished = {p.name for p in cells_dir.glob("*.nc")}
    assert 3 <= len(finished) < 8
    started_before = log.read_text().split("\n")
    done_cells = [a for a in range(8) if f"{sweeps.cell_key({'a': a})}.nc" in finished]

    out = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr
    assert "result [0.0, 1.0, 4.0, 9.0, 16.0, 25.0, 36.0, 49.0]" in out.stdout
    starts = log.read_text().split("\n")[len(started_before) - 1:]
    recomputed = {int(line.split()[1]) for line in starts if line.startswith("start")}
    assert recomputed == set(range(8)) - set(done_cells)


@pytest.mark.parametrize("algorithm", ["EP random-sign", "feedforward BP"])
def test_a_training_cell_is_deterministic(algorithm):
    kw = dict(epochs=1, train_size=100, test_size=50)
    runs = [sweeps.training_cell(algorithm, seed=2, **kw).drop_vars("seconds")
            for _ in range(2)]
    xr.testing.assert_identical(runs[0], runs[1])
    other = sweeps.training_cell(algorithm, seed=3, **kw).drop_vars("seconds")
    assert not runs[0].equals(other)
