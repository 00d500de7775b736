"""File output that loses nothing: atomic files, and one writer per directory.

A reader sees the previous good file or the new one, never half of one.  A
Ctrl-C that comes during a netCDF read or write takes effect when it ends.
A directory that a run writes into is held by one process at a time
(:func:`exclusive`): a second one is refused at once, with the holder named.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import socket
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # xarray loads with the first netCDF file: reading digits needs none
    import xarray as xr



def _netcdf_engine() -> str:
    """xarray's netCDF engine: ``h5netcdf`` where it is installed (the ``[nwb]``
    extra), else ``netcdf4``.

    pynwb writes NWB through h5py, which bundles its own HDF5 library; netCDF4
    bundles another.  Two HDF5 libraries used in one process corrupt each other
    (segmentation faults, "NetCDF: HDF error"), so where h5py is present the
    run files go through it too.  Both engines read each other's files.
    """
    from importlib.util import find_spec

    return "h5netcdf" if find_spec("h5netcdf") is not None else "netcdf4"


NETCDF_ENGINE = _netcdf_engine()


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
    import xarray as xr

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


#: the lock file inside a run directory (see :func:`exclusive`)
LOCK_NAME = ".cortex-ep.lock"


class DirectoryInUse(RuntimeError):
    """Another living process holds the lock; the message names it and the way out."""


_held: dict[Path, list] = {}  # lock file -> [descriptor, depth] for this process
_held_guard = threading.Lock()


@contextmanager
def exclusive(lock_file, subject: str, way_out: str):
    """Hold ``lock_file`` exclusively for the block, or raise :class:`DirectoryInUse`.

    The lock is the kernel's (``flock``): it dies with its process, so a run
    killed with ``kill -9`` leaves nothing that blocks the next one.  The file
    records the holder (pid, command, host, start) for the refusal message and
    is removed when the block ends.  Within one process the lock is re-entrant,
    so the command line and the library it calls can both take it.

    Parameters
    ----------
    lock_file : path
        The lock; its directory must exist.
    subject : str
        What is locked, as the refusal names it (``"run directory runs/a"``).
    way_out : str
        What the refused user can do instead.
    """
    path = Path(lock_file).absolute()
    with _held_guard:
        entry = _held.get(path)
        if entry is None:
            entry = _held[path] = [_acquire(path, subject, way_out), 0]
        entry[1] += 1
    try:
        yield path
    finally:
        with _held_guard:
            entry[1] -= 1
            if entry[1] == 0:
                del _held[path]
                # unlinked while still held, so nobody can lock this file and think
                # they hold the path (_acquire checks that the path is still its file)
                path.unlink(missing_ok=True)
                os.close(entry[0])


def _acquire(path: Path, subject: str, way_out: str) -> int:
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = _holder_text(fd)
            os.close(fd)
            raise DirectoryInUse(f"{subject} is in use by {holder}; {way_out}") from None
        try:
            current = os.stat(path)
        except FileNotFoundError:
            current = None
        mine = os.fstat(fd)
        if current is not None and (current.st_ino, current.st_dev) == (mine.st_ino,
                                                                        mine.st_dev):
            break
        os.close(fd)  # its holder removed it as we opened it: take the path anew
    record = {"pid": os.getpid(), "host": socket.gethostname(),
              "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]) if sys.argv
              else "python", "since": time.strftime("%Y-%m-%d %H:%M:%S")}
    os.ftruncate(fd, 0)
    os.write(fd, (json.dumps(record) + "\n").encode())
    return fd


def _holder_text(fd: int) -> str:
    try:
        record = json.loads(os.pread(fd, 4096, 0).decode())
        where = "" if record["host"] == socket.gethostname() else f" on {record['host']}"
        return (f"process {record['pid']}{where} (`{record['command']}`, since "
                f"{record['since']})")
    except (OSError, ValueError, KeyError, TypeError):  # it has not written itself yet
        return "another process"


def check_free(lock_file, subject: str, way_out: str) -> None:
    """Raise :class:`DirectoryInUse` as :func:`exclusive` would if another process holds
    ``lock_file`` now; creates nothing.

    For a refusal before any work, such as a second run's before it loads its data.
    """
    path = Path(lock_file).absolute()
    with _held_guard:
        if path in _held:
            return  # this process: re-entrant
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        raise DirectoryInUse(f"{subject} is in use by {_holder_text(fd)}; {way_out}") from None
    finally:
        os.close(fd)  # closing drops a lock taken by this probe
