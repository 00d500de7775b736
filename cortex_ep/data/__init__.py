"""MNIST for EP: digit sets and their subsets, IDX files, the embedded digits,
the offline full-MNIST cache and random shifts.

- :mod:`~cortex_ep.data.digits` — :class:`Digits` (a train / held-out pair),
  checks, one-hot targets, stratified subsets and validation splits;
- :mod:`~cortex_ep.data.idx` — reading and writing IDX files;
- :mod:`~cortex_ep.data.sources` — :func:`load`: the embedded 5,000 digits, a
  directory of IDX files, the full-MNIST cache or torchvision;
- :mod:`~cortex_ep.data.fetch` — ``cortex-ep data fetch mnist``;
- :mod:`~cortex_ep.data.augment` — random shifts of the training digits.
"""

from .digits import (
                     N_CLASSES,
                     DataError,
                     Digits,
                     check_digits,
                     check_size,
                     one_hot,
                     stratified_indices,
                     stratified_split,
                     subset,
                     validation_last,
                     validation_split,
)
from .idx import IDX_FILES, load_idx_dir, read_idx, write_idx
from .sources import (
                     EMBEDDED_TEST,
                     EMBEDDED_TRAIN,
                     load,
                     load_embedded,
                     load_torchvision,
)

__all__ = ["DataError", "Digits", "EMBEDDED_TEST", "EMBEDDED_TRAIN", "IDX_FILES", "N_CLASSES",
           "check_digits", "check_size", "load", "load_embedded", "load_idx_dir",
           "load_torchvision", "one_hot", "read_idx", "stratified_indices", "stratified_split",
           "subset", "validation_last", "validation_split", "write_idx"]
