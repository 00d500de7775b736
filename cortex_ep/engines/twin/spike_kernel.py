"""A compiled phase of integrate-and-fire units on the CPU: one C loop per sample.

The torch step of :mod:`cortex_ep.engines.twin.spiking` is a dozen whole-tensor
operations and two dense spike products per time step.  With 600 steps per
digit that is some 10,000 tensor operations per batch, and the dense products
multiply every weight by a spike that is mostly 0.  Brian2 instead propagates
only the synapses of the units that fired.  Integrate-and-fire units need no
random numbers, so a whole phase of one sample can run as one compiled loop
(``spike_kernel.c``) with its state in the processor's cache:

- every unit advances as in steps 1–3 of :mod:`~cortex_ep.engines.twin.spiking`,
  with the same arithmetic in the same order (no fused multiply-add);
- then, as Brian2 does, each spike adds its synapses' row of weights to the
  synaptic currents of the units it projects to.  Where the processor has
  AVX-512, the units that fired are found 16 at a time (a compressed store of
  their indices) instead of by a branch per unit.

The spike currents are therefore summed one spike at a time, in Brian2's order,
not as a dense product: in float64 the two twin paths differ in the last bits,
which can break a threshold tie the other way (the tests compare both with
Brian2).

The samples are independent for a whole phase, so :func:`phase` runs slices of
the batch in threads (a C call releases the GIL) that meet only at the phase's end.

The library is compiled on first use with the C compiler (``$CC``, else ``cc``)
for this processor (``-march=native``) and kept in a cache directory
(``$CORTEX_EP_KERNEL_DIR``, else ``~/.cache/cortex_ep``) under a name that
hashes the source, the compiler, its flags and the processor.  Without a
compiler :func:`library` returns None and the twin runs the torch step.

Every array is sample-major, ``(batch, N)`` over the units of all dynamic
populations.  A spike pathway ``k`` is a row ``(pre start, pre end, post start,
post end, offset)`` of ``pathways``; its weights lie in ``weights[offset:]`` as a
``(N_pre, N_post)`` block in row order, so that one spike reads one contiguous row.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import subprocess
import tempfile
import warnings
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path

import numpy as np

SOURCE = Path(__file__).resolve().with_name("spike_kernel.c")
#: ``-ffp-contract=off``: the same roundings as numpy, torch and Brian2's numpy target
FLAGS = ("-O3", "-march=native", "-ffp-contract=off", "-std=c11", "-fPIC", "-shared")
ENV_DIR = "CORTEX_EP_KERNEL_DIR"

_SUFFIX = {np.dtype(np.float32): "f32", np.dtype(np.float64): "f64"}


def _cache_dir() -> Path:
    if os.environ.get(ENV_DIR):
        return Path(os.environ[ENV_DIR])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "cortex_ep"


def _processor() -> str:
    """The processor's model and instruction sets: a build for one is not run on another
    (a virtual machine may hide AVX-512 from a processor that has it)."""
    found = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key = line.split(":")[0].strip()
                if key in ("model name", "flags") and key not in found:
                    found[key] = line
    except OSError:
        pass
    return "".join(found.values()) or platform.processor() or platform.machine()


def _compiler_version(compiler: str) -> str:
    out = subprocess.run([compiler, "--version"], capture_output=True, text=True, timeout=60)
    if out.returncode != 0:
        raise OSError(out.stderr.strip() or f"{compiler} --version failed")
    return out.stdout


def build(directory: Path | None = None, extra_flags: tuple[str, ...] = ()) -> Path:
    """Compile ``spike_kernel.c`` unless a build for this source, compiler, flags and
    processor is cached; returns the library's path.

    ``extra_flags`` follow :data:`FLAGS` (``("-mno-avx512f",)`` builds the portable
    loops on a processor with AVX-512, as the tests do).

    Raises
    ------
    OSError
        No compiler, or the compilation failed (its message included).
    """
    compiler = os.environ.get("CC", "cc")
    directory = Path(directory) if directory is not None else _cache_dir()
    flags = (*FLAGS, *extra_flags)
    key = hashlib.sha256("\0".join([SOURCE.read_text(), compiler, _compiler_version(compiler),
                                    *flags, _processor()]).encode()).hexdigest()[:16]
    target = directory / f"spike_kernel-{key}.so"
    if target.exists():
        return target
    directory.mkdir(parents=True, exist_ok=True)
    # compiled under a temporary name and renamed: a parallel build never reads half a file
    fd, tmp = tempfile.mkstemp(suffix=".so", dir=directory)
    os.close(fd)
    try:
        out = subprocess.run([compiler, *flags, str(SOURCE), "-o", tmp],
                             capture_output=True, text=True, timeout=300)
        if out.returncode != 0:
            raise OSError(f"{compiler} could not compile {SOURCE.name}:\n{out.stderr}")
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target


def load(path: Path) -> ctypes.CDLL:
    """The library at ``path`` (from :func:`build`) with its functions declared."""
    lib = ctypes.CDLL(str(path))
    i64, ptr, f64 = ctypes.c_int64, ctypes.c_void_p, ctypes.c_double
    for suffix in _SUFFIX.values():
        getattr(lib, f"phase_{suffix}").argtypes = (
            [i64, i64] + [ptr] * 9 + [i64, ptr, ptr] + [f64] * 8 + [i64] * 3)
        getattr(lib, f"phase_{suffix}").restype = None
        getattr(lib, f"propagate_{suffix}").argtypes = [i64, i64, ptr, ptr, i64, ptr, ptr]
        getattr(lib, f"propagate_{suffix}").restype = None
    return lib


@lru_cache(maxsize=None)
def library() -> ctypes.CDLL | None:
    """The compiled kernel, built on first use; None (with a warning once) where it
    cannot be built: the twin then runs its torch step, several times slower."""
    try:
        return load(build())
    except (OSError, subprocess.SubprocessError) as err:
        warnings.warn(f"the compiled spiking phase is not available ({err}); the torch twin "
                      f"runs integrate-and-fire units with its slower torch step. Install a C "
                      f"compiler (set $CC to choose one) to use it.", RuntimeWarning,
                      stacklevel=2)
        return None


def _pointer(a: np.ndarray | None):
    return None if a is None else a.ctypes.data


def _check(arrays: dict, dtype, batch: int, n: int) -> None:
    for name, a in arrays.items():
        if a is None:
            continue
        if a.dtype != dtype or a.shape != (batch, n) or not a.flags.c_contiguous:
            raise ValueError(f"{name}: a C-contiguous ({batch}, {n}) {dtype} array is needed, "
                             f"got {a.shape} {a.dtype}")


def _check_pathways(pathways: np.ndarray, weights: np.ndarray, n: int) -> None:
    if pathways.dtype != np.int64 or pathways.ndim != 2 or pathways.shape[1] != 5:
        raise ValueError("pathways: a (K, 5) int64 array is needed")
    for pre_a, pre_e, post_a, post_e, offset in pathways:
        if not (0 <= pre_a <= pre_e <= n and 0 <= post_a <= post_e <= n) or \
                offset < 0 or offset + (pre_e - pre_a) * (post_e - post_a) > weights.size:
            raise ValueError(f"pathway {(pre_a, pre_e, post_a, post_e, offset)} lies outside "
                             f"the {n} units or the {weights.size} weights")


@lru_cache(maxsize=None)
def _pool(threads: int) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=threads, thread_name_prefix="cortex_ep-spikes")


def phase(state: dict, drive: np.ndarray, decay: np.ndarray, pathways: np.ndarray,
          weights: np.ndarray, *, h: float, current_decay: float, trace_decay: float,
          trace_jump: float, membrane_drive: float, leak: float, refractory_steps: int,
          threshold: float, steps: int, window_at: int | None, propagate_last: bool,
          threads: int = 1, lib: ctypes.CDLL | None = None) -> None:
    """``steps`` time steps of every sample, in place.

    A unit fires at ``v ≥ θ``, Brian2's condition, at most once per step: the
    membrane starts a step below θ and gains at most ``θ r_max dt ≤ θ`` in it
    (:class:`~cortex_ep.model.neurons.Spiking` refuses ``r_max dt > 1``), so it
    stays below 2θ; a refractory unit's membrane holds.

    Parameters
    ----------
    state : dict of (batch, N) float arrays
        ``s``, ``current``, ``membrane`` and ``fired`` (receives each step's
        spikes; afterwards the last step's); ``count``, ``trace`` and ``left``
        (refractory steps left, one more than the steps of refractoriness left
        after this one) where the model has them, else None.
    drive, decay : (batch, N) float arrays
        ``h (I_input + b)`` (and the nudge ``h β d``) and the factor of ``s``
        (``1 − h`` or ``1 − h − h β`` on the nudged output).
    pathways : (K, 5) int64 array; weights : 1-D float array
        The spike pathways (module docstring), the spike current per unit weight
        folded into the weights.
    h, current_decay, trace_decay, trace_jump : float
    membrane_drive : float
        ``θ r_max dt`` per unit of rate.
    leak : float
        ``dt / τ_m`` (0: no leak).
    refractory_steps : int
    threshold : float
        θ.
    steps : int
    window_at : int or None
        The step at which the count window opens.
    propagate_last : bool
        Whether the last step's spikes reach the currents (False: the caller
        propagates them with :func:`propagate` after reading the phase's end).
    threads : int
        Slices of the batch run side by side.
    lib : ctypes.CDLL, optional
        A library from :func:`load`; default :func:`library`.
    """
    lib = lib or library()
    s = state["s"]
    batch, n = s.shape
    names = ("s", "current", "membrane", "count", "trace", "left", "fired")
    arrays = {name: state.get(name) for name in names}
    _check({**arrays, "drive": drive, "decay": decay}, s.dtype, batch, n)
    _check_pathways(pathways, weights, n)
    if weights.dtype != s.dtype or not weights.flags.c_contiguous:
        raise ValueError(f"weights: a contiguous {s.dtype} array is needed")
    run = getattr(lib, f"phase_{_SUFFIX[s.dtype]}")
    scalars = (h, current_decay, trace_decay, trace_jump, membrane_drive, leak,
               float(refractory_steps), threshold, steps,
               -1 if window_at is None else window_at, int(propagate_last))

    def rows(lo, hi):
        run(hi - lo, n, *(_pointer(None if a is None else a[lo:hi]) for a in arrays.values()),
            _pointer(drive[lo:hi]), _pointer(decay[lo:hi]), len(pathways),
            _pointer(pathways), _pointer(weights), *scalars)

    threads = max(1, min(threads, batch))
    if threads == 1:
        rows(0, batch)
        return
    edges = np.linspace(0, batch, threads + 1).round().astype(int)
    for job in [_pool(threads).submit(rows, lo, hi) for lo, hi in zip(edges[:-1], edges[1:])]:
        job.result()


def propagate(current: np.ndarray, fired: np.ndarray, pathways: np.ndarray,
              weights: np.ndarray, lib: ctypes.CDLL | None = None) -> None:
    """Step 5 for a batch: the spikes ``fired`` into the currents (both ``(batch, N)``)."""
    batch, n = current.shape
    _check({"current": current, "fired": fired}, current.dtype, batch, n)
    _check_pathways(pathways, weights, n)
    getattr(lib or library(), f"propagate_{_SUFFIX[current.dtype]}")(
        batch, n, _pointer(current), _pointer(fired), len(pathways), _pointer(pathways),
        _pointer(weights))
