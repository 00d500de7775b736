import numpy as np
import pytest

from cortex_ep import data
from cortex_ep.model.spec import layered


@pytest.fixture
def tiny_net():
    """6 -> 5 -> 3 chain, small enough for exact comparisons."""
    return layered([6, 5, 3], [0.1, 0.05], tau=10.0, dt=5.0, name="tiny")


@pytest.fixture
def tiny_batch():
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (8, 6))
    x[x < 0.3] = 0.0
    y = rng.integers(0, 3, 8)
    return x, data.one_hot(y, 3), y


def make_idx_dir(path, n_train=40, n_test=20, seed=0, gz=False, pixels=16):
    """Write a tiny MNIST-like IDX directory with every class present."""
    rng = np.random.default_rng(seed)
    suffix = ".gz" if gz else ""
    side = int(np.sqrt(pixels))
    for split, n in (("train", n_train), ("t10k", n_test)):
        labels = np.arange(n) % 10
        images = rng.integers(0, 256, (n, side, side))
        # make each class's images distinct so a classifier can learn them
        images[np.arange(n), labels % side, :] = 255
        data.write_idx(path / f"{split}-images-idx3-ubyte{suffix}", images.astype(np.uint8))
        data.write_idx(path / f"{split}-labels-idx1-ubyte{suffix}", labels.astype(np.uint8))
    return path


#: a 16-pixel model small enough to train in a second (numpy engine, tiny IDX data)
TINY16_MODEL = '''
from cortex_ep.model.spec import layered

TRAINING = {"epochs": 2, "batch_size": 5, "free_steps": 10, "nudged_steps": 2}


def network():
    return layered([16, 8, 10], (0.2, 0.1), name="tiny16")
'''


#: a 16-pixel model with integrate-and-fire settings for command-line spiking runs
TINY_IF_MODEL = '''
from cortex_ep.model.spec import layered

TRAINING = {"epochs": 1, "batch_size": 5}
IF = {"r_max_hz": 500.0, "free_ms": 30.0, "nudged_ms": 10.0}
IF_TRAINING = {"plasticity": "phase", "beta": 1.0, "estimator": "symmetric"}


def network():
    return layered([16, 8, 10], (0.2, 0.1), name="tiny_if")
'''


def tiny_if_run_inputs(tmp_path):
    """``(model file, IDX directory)`` of :data:`TINY_IF_MODEL` and 20 + 10 tiny digits."""
    model = tmp_path / "tiny_if.py"
    model.write_text(TINY_IF_MODEL)
    (tmp_path / "idx").mkdir()
    return model, make_idx_dir(tmp_path / "idx", n_train=20, n_test=10)


def refused(argv, capsys) -> str:
    """Run ``cortex-ep argv``: it must exit 2 with one line and no traceback."""
    from cortex_ep.cli.main import main

    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err
