"""IDX files, the format MNIST is distributed in (LeCun et al.), optionally gzipped."""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

import numpy as np

from ..io import atomic_path
from .digits import DataError, Digits

IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4",
               0x0E: ">f8"}


def read_idx(path) -> np.ndarray:
    """Read one IDX file (gzipped when its name ends in ``.gz``) into an array of its
    declared shape; :class:`DataError` naming the file if it is damaged."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise DataError(f"cannot read IDX file {path}: {err.strerror}; check the path and "
                        "its permissions") from None
    return parse_idx(raw, path)


#: what a user can do about a damaged file in a directory of their own
REPLACE_FILE = "copy or download the file again"


def parse_idx(raw: bytes, path, fix: str = REPLACE_FILE) -> np.ndarray:
    """The array held by the bytes ``raw`` of the IDX file ``path`` (gunzipped first
    when the name ends in ``.gz``); :class:`DataError` naming ``path`` and ``fix``
    when the bytes are cut short or corrupt."""
    path = Path(path)
    if path.suffix == ".gz":
        try:
            raw = gzip.decompress(raw)
        except EOFError:
            raise DataError(f"cannot read IDX file {path}: its gzip stream ends early, so "
                            "the file was cut short (a copy or download that stopped "
                            f"halfway); {fix}") from None
        except (OSError, zlib.error) as err:  # bad header, bad deflate data, bad CRC
            raise DataError(f"cannot read IDX file {path}: it is not a valid gzip file "
                            f"({err}); {fix}") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise DataError(f"{path} is not an IDX file (bad magic number); expected the "
                        f"MNIST files train-images-idx3-ubyte etc.; {fix}")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(raw) < header:
        raise DataError(f"{path}: truncated IDX header; {fix}")
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(raw) - header != expected:
        raise DataError(f"{path}: header declares shape {shape} ({expected} bytes of data) "
                        f"but the file holds {len(raw) - header}; the file is truncated or "
                        f"corrupt: {fix}")
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)


def write_idx(path, array: np.ndarray) -> None:
    """Write ``array`` as an IDX file (uint8, or big-endian float32 for float input);
    gzipped when ``path`` ends in ``.gz``."""
    array = np.asarray(array)
    code = 0x0D if np.issubdtype(array.dtype, np.floating) else 0x08
    array = np.ascontiguousarray(array, dtype=_IDX_DTYPES[code])
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
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
    return digits_from_idx(arrays, directory)


def digits_from_idx(arrays: dict, directory, source: str | None = None) -> Digits:
    """:class:`Digits` from the four IDX arrays (keys of :data:`IDX_FILES`) of
    ``directory`` (``source``: the name they go by, default the directory);
    :class:`DataError` if they do not fit together."""
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
    return Digits(**out, source=source or str(directory))
