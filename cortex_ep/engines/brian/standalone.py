"""The cpp_standalone device of the Brian2 engine: one active project, builds serialised.

Brian2 has one standalone device per process; an engine activates a fresh
project for each schedule length it builds, and a lock file serialises builds
and runs of one project directory across processes.
"""

from __future__ import annotations

import fcntl
import os
from contextlib import contextmanager
from pathlib import Path

#: the engine whose project the standalone device holds
_ACTIVE = [None]


def is_active(owner) -> bool:
    """Whether the standalone device holds ``owner``'s project."""
    return _ACTIVE[0] is owner


def activate(directory: Path, owner) -> None:
    """Make a fresh cpp_standalone project the active Brian2 device."""
    import brian2
    from brian2 import device, set_device

    if _ACTIVE[0] is not None:
        device.reinit()
    set_device("cpp_standalone", directory=str(directory), build_on_run=False)
    brian2.prefs.devices.cpp_standalone.openmp_threads = 0
    # Brian2's default ``make -j`` starts a compiler per source file at once (a load of 60
    # on two cores, which starves every run beside it): one per core instead
    brian2.prefs.devices.cpp_standalone.extra_make_args_unix = [f"-j{os.cpu_count() or 1}"]
    _ACTIVE[0] = owner


@contextmanager
def locked(directory: Path):
    """Serialise builds and runs of one standalone project across processes."""
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ".lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
