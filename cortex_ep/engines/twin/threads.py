"""How many CPU threads the torch twin uses: a policy for shared machines.

On a 2-core AMD EPYC (the docs' performance page), at batch 20 a
second thread saves ~15% of an epoch when the machine is idle (0.9 against
1.05 s on the embedded digits), but when other processes want the
cores the threads of a step wait for each other, spinning: one competing
process made 2 threads 4× slower, and on the fully loaded machine an epoch
took 9.6–68 s with 2 threads against 2.3–3.2 s with one (batch 200: 6.1
against 1.1 s).  Small batches lose little on one thread and can lose a
factor of 20 with more, so the policy is:

- below :data:`MIN_BATCH_FOR_THREADS` samples per batch: one thread;
- from there: the cores the 1-minute load average leaves idle (at least one);
- ``CORTEX_EP_THREADS=N`` in the environment overrides both;
- idle OpenMP threads sleep instead of spinning (``OMP_WAIT_POLICY=PASSIVE``,
  set by :mod:`cortex_ep.engines.twin` unless already set, effective when torch is
  first imported through cortex_ep): 2 threads then took 2.6–3.6 s.

Only CPU runs are affected; the torch default is restored after each call.

The compiled phase of integrate-and-fire units
(:mod:`cortex_ep.engines.twin.spike_kernel`) is another matter: its threads
each run whole samples through a whole phase and meet once at its end, so no
thread waits for another at every step.  It takes, at any batch size, the
cores that other runnable tasks leave free when a phase starts
(:func:`sample_threads`).
"""

from __future__ import annotations

import os
from contextlib import contextmanager

ENV_VAR = "CORTEX_EP_THREADS"
#: batches smaller than this run on one thread
MIN_BATCH_FOR_THREADS = 256


def policy_threads(batch_size: int) -> int:
    """Threads for a CPU epoch at ``batch_size`` under the policy."""
    forced = _forced()
    if forced:
        return forced
    if batch_size < MIN_BATCH_FOR_THREADS:
        return 1
    return _idle_cores()


def _forced():
    forced = os.environ.get(ENV_VAR)
    if not forced:
        return None
    try:
        n = int(forced)
    except ValueError:
        raise ValueError(f"{ENV_VAR}={forced!r}: give a number of threads >= 1") from None
    if n < 1:
        raise ValueError(f"{ENV_VAR}={forced!r}: give a number of threads >= 1")
    return n


def _idle_cores() -> int:
    cores = os.cpu_count() or 1
    try:
        busy = os.getloadavg()[0]
    except OSError:  # no load average on this platform
        busy = 0.0
    return max(1, min(cores, int(cores - busy + 0.5)))


def _runnable_others() -> int | None:
    """Processes and threads that want a core right now besides the caller (Linux)."""
    try:
        with open("/proc/loadavg") as f:
            return max(0, int(f.read().split()[3].split("/")[0]) - 1)
    except (OSError, ValueError, IndexError):
        return None


def sample_threads() -> int:
    """Threads for work whose samples run apart for a whole phase: ``CORTEX_EP_THREADS``,
    else the cores that other runnable tasks leave free now (at least one).

    The load average would count this process's own work: a run alone on the
    machine would see one core busy and take one thread.
    """
    forced = _forced()
    if forced:
        return forced
    others = _runnable_others()
    if others is None:
        return _idle_cores()
    return max(1, (os.cpu_count() or 1) - others)


def describe(batch_size: int) -> str:
    """One line naming the policy and what it chooses at ``batch_size`` now."""
    if os.environ.get(ENV_VAR):
        rule = f"{ENV_VAR}={os.environ[ENV_VAR]}"
    else:
        rule = (f"1 thread below batch {MIN_BATCH_FOR_THREADS}, else the idle cores "
                f"({os.cpu_count()} cores, 1-min load {os.getloadavg()[0]:.1f})")
    return (f"torch twin CPU threads: {policy_threads(batch_size)} at batch {batch_size}, "
            f"{sample_threads()} for compiled spiking phases ({rule})")


@contextmanager
def cpu_threads(batch_size: int, device):
    """Run the block with the policy's thread count on CPU; any other device: unchanged."""
    import torch

    if torch.device(device).type != "cpu":
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(policy_threads(batch_size))
    try:
        yield
    finally:
        torch.set_num_threads(before)
