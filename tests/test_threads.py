"""The torch twin's CPU thread policy."""

import pytest
import torch

from cortex_ep.engines.twin import threads


def test_small_batches_run_on_one_thread(monkeypatch):
    monkeypatch.delenv(threads.ENV_VAR, raising=False)
    assert threads.policy_threads(20) == 1
    assert 1 <= threads.policy_threads(threads.MIN_BATCH_FOR_THREADS) <= (
        __import__("os").cpu_count() or 1)
    assert "1 thread below batch" in threads.describe(20)


def test_environment_override_and_its_errors(monkeypatch):
    monkeypatch.setenv(threads.ENV_VAR, "3")
    assert threads.policy_threads(20) == 3 and "CORTEX_EP_THREADS=3" in threads.describe(20)
    for bad in ("0", "two"):
        monkeypatch.setenv(threads.ENV_VAR, bad)
        with pytest.raises(ValueError, match="number of threads"):
            threads.policy_threads(20)


def test_threads_restored_after_the_block(monkeypatch):
    monkeypatch.setenv(threads.ENV_VAR, "1")
    before = torch.get_num_threads()
    with threads.cpu_threads(20, "cpu"):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


def test_compiled_spiking_phases_take_the_cores_others_leave(monkeypatch):
    """Threads that meet once per phase: the override, else the cores minus the tasks
    other than the caller that are runnable now (the load average would count the
    caller's own work)."""
    monkeypatch.setenv(threads.ENV_VAR, "3")
    assert threads.sample_threads() == 3
    monkeypatch.delenv(threads.ENV_VAR)
    cores = __import__("os").cpu_count() or 1
    for others, expected in ((0, cores), (cores - 1, 1), (cores + 5, 1)):
        monkeypatch.setattr(threads, "_runnable_others", lambda n=others: n)
        assert threads.sample_threads() == expected
    monkeypatch.setattr(threads, "_runnable_others", lambda: None)  # no /proc/loadavg
    assert 1 <= threads.sample_threads() <= cores
    assert "for compiled spiking phases" in threads.describe(20)
