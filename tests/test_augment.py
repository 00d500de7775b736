"""Random shifts of the training digits: exact translations, seeded, held-out digits untouched."""

import numpy as np
import pytest

from cortex_ep.data import Digits
from cortex_ep.data.augment import check_shift, random_shifts
from cortex_ep.learning.loop import TrainConfig, train
from cortex_ep.model.spec import layered


def _translate(image, dy, dx):
    """Independent translation: index arithmetic pixel by pixel."""
    side = image.shape[0]
    out = np.zeros_like(image)
    for r in range(side):
        for c in range(side):
            if 0 <= r - dy < side and 0 <= c - dx < side:
                out[r, c] = image[r - dy, c - dx]
    return out


@pytest.mark.parametrize("max_shift", [1, 2])
def test_every_image_is_its_own_translation(max_shift):
    rng = np.random.default_rng(3)
    x = rng.uniform(0, 1, (200, 36)).astype(np.float32)
    shifted = random_shifts(x, max_shift, np.random.default_rng(7))
    offsets = np.random.default_rng(7).integers(-max_shift, max_shift + 1, size=(2, 200))
    assert shifted.dtype == x.dtype and shifted.shape == x.shape
    for i in range(200):
        expected = _translate(x[i].reshape(6, 6), offsets[0, i], offsets[1, i])
        np.testing.assert_array_equal(shifted[i].reshape(6, 6), expected)
    # every offset of the range occurs, the zero offset included
    pairs = set(zip(offsets[0], offsets[1]))
    assert len(pairs) == (2 * max_shift + 1) ** 2


def test_hand_example():
    x = np.arange(1.0, 17.0).reshape(1, 16)
    rng = np.random.default_rng(0)
    dy, dx = np.random.default_rng(0).integers(-1, 2, size=(2, 1))[:, 0]  # what it will draw
    got = random_shifts(x, 1, rng).reshape(4, 4)
    np.testing.assert_array_equal(got, _translate(x.reshape(4, 4), dy, dx))
    assert (dy, dx) != (0, 0)  # the example exercises a real move


def test_zero_shift_is_identity_and_draws_nothing():
    x = np.ones((3, 16))
    rng = np.random.default_rng(0)
    assert random_shifts(x, 0, rng) is x
    assert rng.integers(1000) == np.random.default_rng(0).integers(1000)


@pytest.mark.parametrize("bad, pixels, message", [
    (-1, 784, "whole number of pixels >= 0"),
    (1.5, 784, "whole number of pixels >= 0"),
    (True, 784, "whole number of pixels >= 0"),
    (2, 30, "not a square number"),
    (4, 16, "give a shift below 4"),
])
def test_bad_shift(bad, pixels, message):
    with pytest.raises(ValueError, match=message):
        check_shift(bad, pixels)


def _digits():
    rng = np.random.default_rng(0)
    y = np.arange(60) % 4
    x = np.zeros((60, 16))
    x[np.arange(60), 5 + y] = 1.0  # a class = a pixel of the 4x4 image's middle rows
    x = np.clip(x + rng.uniform(0, 0.2, x.shape), 0, 1)
    return Digits(x[:40], y[:40], x[40:], y[40:], "synthetic")


def test_training_sees_shifted_digits_and_is_seeded():
    net = layered([16, 8, 4], [0.2, 0.1], tau=10.0, dt=5.0, name="tiny_shift")
    digits = _digits()
    runs = {}
    for shift, seed in ((0, 0), (1, 0), (1, 0), (1, 1)):
        config = TrainConfig(epochs=2, batch_size=5, seed=seed, engine="numpy", shift=shift)
        history, W, _ = train(net, digits, config, progress=False)
        runs.setdefault((shift, seed), []).append(np.concatenate([np.ravel(W[k]) for k in sorted(W)]))
    np.testing.assert_array_equal(*runs[(1, 0)])  # same seed, same shifts
    assert not np.allclose(runs[(0, 0)][0], runs[(1, 0)][0])
    assert not np.allclose(runs[(1, 0)][0], runs[(1, 1)][0])
    assert history.attrs["shift"] == 1


def test_train_refuses_shift_of_non_square_images():
    net = layered([15, 4, 4], [0.2, 0.1], name="odd")
    rng = np.random.default_rng(0)
    y = np.arange(20) % 4
    digits = Digits(rng.uniform(0, 1, (20, 15)), y, rng.uniform(0, 1, (8, 15)), y[:8], "odd")
    with pytest.raises(ValueError, match="not a square number"):
        train(net, digits, TrainConfig(epochs=1, engine="numpy", shift=1), progress=False)


def test_engines_agree_on_shifted_digits(tmp_path):
    """The shift happens before any engine: Brian2, the twin and the reference learn alike."""
    net = layered([16, 8, 4], [0.2, 0.1], tau=10.0, dt=5.0, name="tiny_shift")
    digits = _digits()
    weights = {}
    for engine in ("numpy", "torch", "brian"):
        config = TrainConfig(epochs=1, batch_size=5, seed=2, engine=engine, target="numpy",
                             dtype="float64", shift=1)
        _, W, _ = train(net, digits, config, progress=False)
        weights[engine] = W
    for engine in ("torch", "brian"):
        for k in weights["numpy"]:
            np.testing.assert_allclose(weights[engine][k], weights["numpy"][k], atol=1e-6,
                                       err_msg=f"{engine} {k}")
