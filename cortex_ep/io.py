"""Atomic file output: a reader sees the previous good file or the new one, never half.

A Ctrl-C that comes during a netCDF read or write takes effect when it ends.
"""

from __future__ import annotations

import os
import signal
import tempfile
import threading
from contextlib import contextmanager
from pathlib import Path

import xarray as xr

NETCDF_ENGINE = "netcdf4"


_deferring = False


@contextmanager
def interrupts_deferred():
    """Hold Ctrl-C (SIGINT) until the block ends, then deliver it as it would have been.

    netCDF writers and readers hold locks that a ``KeyboardInterrupt`` raised
    inside them leaves taken; their own cleanup then waits on that lock
    forever. Blocks nest (the outermost delivers); outside the main thread,
    where no handler can be set, the block runs unchanged.
    """
    global _deferring
    previous = signal.getsignal(signal.SIGINT)
    if (_deferring or previous is None  # None: a handler set outside Python
            or threading.current_thread() is not threading.main_thread()):
        yield
        return
    received = []
    signal.signal(signal.SIGINT, lambda signum, frame: received.append(signum))
    _deferring = True
    try:
        yield
    finally:
        _deferring = False
        signal.signal(signal.SIGINT, previous)
        if received:
            signal.raise_signal(signal.SIGINT)  # the previous handler decides what it means


@contextmanager
def atomic_path(path):
    """Yield a temporary path beside ``path``; rename it to ``path`` on success.

    On an exception the temporary file is removed and ``path`` is untouched.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_dataset(ds: xr.Dataset, path, compress: bool = False) -> Path:
    """Write ``ds`` to netCDF at ``path`` atomically.

    ``compress``: deflate the floating-point variables (lossless; recorded
    traces, with their NaN tails and saturated units, shrink several-fold).
    """
    encoding = {name: {"zlib": True, "complevel": 1, "shuffle": True}
                for name, var in ds.data_vars.items()
                if var.dtype.kind == "f"} if compress else None
    with interrupts_deferred(), atomic_path(path) as tmp:
        ds.to_netcdf(tmp, engine=NETCDF_ENGINE, encoding=encoding)
    return Path(path)


def write_figure(fig, path, dpi: int = 130) -> Path:
    """Save a matplotlib figure as PNG atomically and close it."""
    import matplotlib.pyplot as plt

    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png", bbox_inches="tight")
    plt.close(fig)
    return Path(path)


def read_dataset(path) -> xr.Dataset:
    """Read a netCDF file written by :func:`write_dataset` fully into memory.

    Times stay plain numbers in ms (``attrs["units"]``), not timedeltas.
    """
    with interrupts_deferred(), xr.open_dataset(path, engine=NETCDF_ENGINE,
                                                decode_timedelta=False) as ds:
        return ds.load()


def check_writable_dir(path) -> Path:
    """Raise ``ValueError`` unless ``path`` is, or can be created as, a writable directory.

    Creates nothing: the nearest existing ancestor is probed with a temporary file.
    """
    path = Path(path).expanduser().resolve()
    if path.exists() and not path.is_dir():
        raise ValueError(f"--out {path} exists and is not a directory; choose a new "
                         "directory name")
    probe = path
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise ValueError(f"--out {path} cannot be created: {probe} is a file; choose a "
                         "directory path")
    try:
        fd, tmp = tempfile.mkstemp(dir=probe)
        os.close(fd)
        os.unlink(tmp)
    except OSError as err:
        raise ValueError(f"--out {path} cannot be written ({err.strerror} in {probe}); "
                         "choose a directory you can write to") from None
    return path
