"""Digit sets: the train / held-out pair, its checks, one-hot targets and subsets.

Images are float arrays in [0, 1] of shape ``(n, 784)``; labels are integer
arrays of shape ``(n,)`` with values 0–9.  Where digits come from is
:mod:`cortex_ep.data.sources`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

N_CLASSES = 10


class DataError(ValueError):
    """Data that cannot be used; the message says what is wrong and how to fix it."""


@dataclass(frozen=True)
class Digits:
    """A train / held-out pair of digit sets.

    Attributes
    ----------
    x_train : (n_train, 784) float array in [0, 1]
    y_train : (n_train,) int array in 0..9
    x_test : (n_test, 784) float array in [0, 1]
    y_test : (n_test,) int array in 0..9
    source : str
        Where the digits came from (stored in run histories).
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str

    def __post_init__(self):
        for split in ("train", "test"):
            check_digits(getattr(self, f"x_{split}"), getattr(self, f"y_{split}"),
                         f"{self.source} ({split})")


def check_digits(x, y, what: str = "data") -> None:
    """Raise :class:`DataError` unless ``x``/``y`` are usable images and labels."""
    x = np.asarray(x)
    y = np.asarray(y)
    if x.ndim != 2:
        raise DataError(f"{what}: images must have shape (n, pixels), got {x.shape}; "
                        "flatten each image to one row")
    if y.shape != (x.shape[0],):
        raise DataError(f"{what}: {x.shape[0]} images but labels of shape {y.shape}; "
                        "give one label per image")
    if x.shape[0] == 0:
        raise DataError(f"{what}: no samples; ask for at least one per class")
    if not np.issubdtype(x.dtype, np.number) or not np.all(np.isfinite(x)):
        raise DataError(f"{what}: images contain NaN or infinite values; clean or "
                        "re-export the data")
    if x.min() < 0 or x.max() > 1:
        raise DataError(f"{what}: pixel values must lie in [0, 1], found "
                        f"[{x.min():g}, {x.max():g}]; divide 8-bit images by 255")
    if not np.issubdtype(y.dtype, np.integer) or y.min() < 0 or y.max() >= N_CLASSES:
        raise DataError(f"{what}: labels must be integers 0..9, found "
                        f"{np.unique(y)[:12].tolist()}")


def one_hot(y: np.ndarray, n_classes: int = N_CLASSES) -> np.ndarray:
    """Targets ``d`` of shape ``(n, n_classes)`` from labels ``(n,)``."""
    d = np.zeros((len(y), n_classes))
    d[np.arange(len(y)), y] = 1.0
    return d



def stratified_indices(y, n: int, seed: int = 0) -> np.ndarray:
    """Indices of a class-balanced subset of ``n`` samples, deterministic in ``seed``.

    Classes get ``n // 10`` samples each and the remainder goes to the lowest
    classes; the indices are returned sorted.
    """
    return stratified_split(y, n, 0, seed)[0]


def stratified_split(y, n_first: int, n_second: int, seed: int = 0):
    """Two disjoint class-balanced index sets of sizes ``n_first`` and ``n_second``."""
    y = np.asarray(y)
    classes = np.unique(y)
    rng = np.random.default_rng(seed)
    per_class = {c: rng.permutation(np.flatnonzero(y == c)) for c in classes}
    q_first, q_second = _quota(n_first, classes), _quota(n_second, classes)
    first, second = [], []
    for c in classes:
        need = q_first[c] + q_second[c]
        if need > len(per_class[c]):
            raise DataError(f"class {c} has {len(per_class[c])} samples, too few for a "
                            f"stratified subset of {n_first + n_second}; ask for fewer "
                            "samples")
        first.extend(per_class[c][:q_first[c]].tolist())
        second.extend(per_class[c][q_first[c]:need].tolist())
    return np.sort(np.array(first, dtype=np.int64)), np.sort(np.array(second, dtype=np.int64))


def _quota(n: int, classes) -> dict:
    base, extra = divmod(n, len(classes))
    return {c: base + (i < extra) for i, c in enumerate(classes)}


def subset(digits: Digits, train_size: int | None = None, test_size: int | None = None,
           seed: int = 0) -> Digits:
    """Stratified subsets of a :class:`Digits`; ``None`` keeps a split whole."""
    out = {}
    for split, n in (("train", train_size), ("test", test_size)):
        x, y = getattr(digits, f"x_{split}"), getattr(digits, f"y_{split}")
        if n is not None:
            check_size(n, len(y), f"--{split}-size")
            idx = stratified_indices(y, n, seed)
            x, y = x[idx], y[idx]
        out[f"x_{split}"], out[f"y_{split}"] = x, y
    return Digits(**out, source=digits.source)


def validation_split(digits: Digits, n_validation: int, seed: int = 0) -> Digits:
    """Carve a stratified validation set out of the training digits.

    The returned :class:`Digits` trains on the rest and evaluates ("test") on
    the validation digits; the held-out digits are not used, so that settings
    chosen on it never see them.
    """
    check_size(n_validation, len(digits.y_train) - 1, "--validation")
    val, train = stratified_split(digits.y_train, n_validation,
                                  len(digits.y_train) - n_validation, seed)
    return Digits(digits.x_train[train], digits.y_train[train], digits.x_train[val],
                  digits.y_train[val], source=f"{digits.source} (validation split)")


def validation_last(digits: Digits, n_validation: int) -> Digits:
    """Evaluate on the last ``n_validation`` training digits and train on the rest.

    Full MNIST's customary split for choosing settings (the last 10,000 of the
    60,000 training digits); the held-out digits are not used.
    """
    check_size(n_validation, len(digits.y_train) - 1, "--validation")
    cut = len(digits.y_train) - n_validation
    return Digits(digits.x_train[:cut], digits.y_train[:cut], digits.x_train[cut:],
                  digits.y_train[cut:], source=f"{digits.source} (last {n_validation} "
                  "training digits as validation)")


def check_size(n, available: int, option: str) -> None:
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 1:
        raise DataError(f"{option} = {n!r}: the subset size must be a positive integer")
    if n > available:
        raise DataError(f"{option} = {n} but only {available} samples are available; "
                        f"ask for at most {available}")
