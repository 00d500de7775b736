"""analyses/reproduce_scellier2017.py: the paper's hyper-parameters, in --quick mode."""

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "analyses" / "reproduce_scellier2017.py"


def test_quick_run_prints_ours_beside_the_paper(tmp_path):
    proc = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--nets", "1",
                           "--out", str(tmp_path)], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    row = next(line for line in proc.stdout.splitlines() if line.startswith("784-500-10 "))
    assert "20/4" in row and "0.1 0.05" in row and "1/25" in row and "2-3%" in row
    assert (tmp_path / "net1" / "history.nc").exists()


def test_the_published_hyper_parameters():
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        import reproduce_scellier2017 as rs
    finally:
        sys.path.pop(0)
    net2 = rs.network(2)
    assert net2.layer_sizes == (784, 500, 500, 10)
    assert [p.lr for p in net2.projections] == [0.4, 0.1, 0.01]
    assert all(p.init_gain == 1.0 for p in net2.projections)
    cfg = rs.config(3)
    assert (cfg.relaxation.free_steps, cfg.relaxation.nudged_steps, cfg.epochs) == (500, 8, 500)
    assert cfg.estimator.beta == 1.0 and cfg.batch_size == 20
