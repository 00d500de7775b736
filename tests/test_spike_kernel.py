"""The compiled phase of integrate-and-fire units (cortex_ep.engines.twin.spike_kernel).

Brian2 checks it through the twin's learning in ``test_spiking_twin.py`` (the
epochs there run in it); here it is checked against the twin's torch step, its
AVX-512 loops against its portable ones, and its refusals.
"""

import warnings

import numpy as np
import pytest
import torch
from test_spiking import _params
from test_spiking_twin import IF_CASES, _case, _digits

from cortex_ep import Relaxation
from cortex_ep.engines.twin import spike_kernel
from cortex_ep.engines.twin.engine import TorchEngine

#: the cases the compiled phase runs (lateral columns take the torch step)
COMPILED = [name for name in IF_CASES if "lateral" not in name]


def _both_paths(name, n=7, dtype="float64"):
    """``SpikingNetwork.run`` of one batch through the compiled phase and the torch step."""
    net, spikes, est = _case(IF_CASES[name])
    W, b = _params(net)
    x, d = _digits(net, n, seed=4)
    signs = est.signs(n, np.random.default_rng(2))
    engine = TorchEngine(net, est, Relaxation(), spikes=spikes, dtype=dtype)
    args = [engine.tensor(a) for a in (x, d)]
    params = [{k: engine.tensor(v) for k, v in p.items()} for p in (W, b)]
    out = {}
    for fused in (True, False):
        engine.spiking.fusable = fused
        assert engine.spiking.fused(args[0]) is fused
        out[fused] = engine.spiking.run(*args, *params, engine.tensor(signs))
    return out[True], out[False]


@pytest.mark.parametrize("name", COMPILED)
def test_compiled_phase_fires_the_torch_steps_spikes(name):
    """Float64: what the phase rule reads (spike counts or traces) and the free output
    of every sample agree with the torch step; counts exactly."""
    (a_fused, b_fused, free_fused), (a_torch, b_torch, free_torch) = _both_paths(name)
    for fused, torch_ in ((a_fused, a_torch), (b_fused, b_torch)):
        for pop in fused:
            np.testing.assert_allclose(fused[pop].numpy(), torch_[pop].numpy(), rtol=0,
                                       atol=1e-12, err_msg=pop)
    np.testing.assert_allclose(free_fused.numpy(), free_torch.numpy(), rtol=0, atol=1e-12)
    assert any(float(r.sum()) > 0 for pop, r in a_fused.items() if pop != "x")


def test_compiled_phase_in_float32_stays_with_the_torch_step():
    """Float32 rounds differently in the two paths (a sum per spike against a dense
    product), so a rare threshold tie may break the other way: the counts of the 14
    samples differ in at most a few spikes in all."""
    (a_fused, _, _), (a_torch, _, _) = _both_paths("counts, symmetric", n=14, dtype="float32")
    per_spike = _case(IF_CASES["counts, symmetric"])[1].count_scale
    for pop in a_fused:
        if pop == "x":
            continue
        total = a_torch[pop].numpy().sum() / per_spike
        differ = np.abs(a_fused[pop].numpy() - a_torch[pop].numpy()).sum() / per_spike
        assert total > 100 and differ <= 3, (pop, total, differ)


def _random_state(rng, batch, n, dtype, counts, traces, refractory):
    def a(low=0.0, high=1.0):
        return rng.uniform(low, high, (batch, n)).astype(dtype)

    state = {"s": a(), "current": a(-0.2, 0.3), "membrane": a(0.0, 0.99),
             "count": a(0, 5).round() if counts else None,
             "trace": a() if traces else None,
             "left": rng.integers(0, 3, (batch, n)).astype(dtype) if refractory else None,
             "fired": np.zeros((batch, n), dtype)}
    return state


def _random_pathways(rng, n, dtype):
    # 0:37 -> 37:40 (narrow), 37:40 -> 0:37 and 40:n -> 0:37 (wide), 0:37 -> 40:n
    spans = [(0, 37, 37, 40), (37, 40, 0, 37), (40, n, 0, 37), (0, 37, 40, n)]
    rows, blocks, offset = [], [], 0
    for pre_a, pre_e, post_a, post_e in spans:
        size = (pre_e - pre_a) * (post_e - post_a)
        rows.append((pre_a, pre_e, post_a, post_e, offset))
        blocks.append(rng.normal(0, 0.3, size))
        offset += size
    return np.asarray(rows, np.int64), np.concatenate(blocks).astype(dtype)


def _run(lib, state, drive, decay, pathways, weights, threads=1, **settings):
    out = {k: (None if v is None else v.copy()) for k, v in state.items()}
    kw = dict(h=0.05, current_decay=0.9, trace_decay=0.95, trace_jump=0.1,
              membrane_drive=0.5, leak=0.0, refractory_steps=0, threshold=1.0, steps=60,
              window_at=20, propagate_last=False)
    kw.update(settings)
    spike_kernel.phase(out, drive, decay, pathways, weights, threads=threads, lib=lib, **kw)
    return out


def _avx512() -> bool:
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line for line in f if line.startswith("flags")), "")
    except OSError:
        return False
    return " avx512f " in flags + " "


VARIANTS = {
    "plain, counts": dict(counts=True),
    "leak, refractory, θ 0.7, traces": dict(traces=True, refractory=True,
                                            settings=dict(leak=0.025, refractory_steps=3,
                                                          threshold=0.7, membrane_drive=0.35)),
}


@pytest.mark.skipif(not _avx512(), reason="this processor has no AVX-512: one path only")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_avx512_loops_equal_the_portable_ones(variant, dtype, tmp_path):
    """Built with and without AVX-512, the phase gives the same bits: the vector
    loops do the portable loops' operations in the same order."""
    vectors = spike_kernel.load(spike_kernel.build(tmp_path))
    portable = spike_kernel.load(spike_kernel.build(tmp_path, ("-mno-avx512f",)))
    case = VARIANTS[variant]
    rng = np.random.default_rng(5)
    batch, n = 6, 53
    state = _random_state(rng, batch, n, dtype, case.get("counts", False),
                          case.get("traces", False), case.get("refractory", False))
    drive = rng.uniform(-0.02, 0.08, (batch, n)).astype(dtype)
    decay = np.full((batch, n), 0.95, dtype)
    pathways, weights = _random_pathways(rng, n, dtype)
    results = [_run(lib, state, drive, decay, pathways, weights, **case.get("settings", {}))
               for lib in (vectors, portable)]
    for name, value in results[0].items():
        if value is not None:
            np.testing.assert_array_equal(value, results[1][name], err_msg=name)
    assert results[0]["fired"].sum() > 0


def test_threads_split_the_batch_without_changing_a_bit():
    rng = np.random.default_rng(6)
    batch, n = 9, 53
    state = _random_state(rng, batch, n, np.float64, True, False, False)
    drive = rng.uniform(-0.02, 0.08, (batch, n))
    decay = np.full((batch, n), 0.95)
    pathways, weights = _random_pathways(rng, n, np.float64)
    one, three = (_run(None, state, drive, decay, pathways, weights, threads=t) for t in (1, 3))
    for name, value in one.items():
        if value is not None:
            np.testing.assert_array_equal(value, three[name], err_msg=name)


def test_the_kernel_refuses_arrays_it_cannot_read():
    rng = np.random.default_rng(7)
    state = _random_state(rng, 4, 53, np.float64, True, False, False)
    drive, decay = np.zeros((4, 53)), np.ones((4, 53))
    pathways, weights = _random_pathways(rng, 53, np.float64)
    with pytest.raises(ValueError, match=r"drive: a C-contiguous \(4, 53\) float64"):
        _run(None, state, drive.astype(np.float32), decay, pathways, weights)
    with pytest.raises(ValueError, match="count: a C-contiguous"):
        _run(None, {**state, "count": state["count"][:, :40]}, drive, decay, pathways,
             weights)
    bad = pathways.copy()
    bad[0, 1] = 60
    with pytest.raises(ValueError, match="lies outside the 53 units"):
        _run(None, state, drive, decay, bad, weights)
    with pytest.raises(ValueError, match="weights: a contiguous float64"):
        _run(None, state, drive, decay, pathways, weights.astype(np.float32))


def test_without_a_compiler_the_twin_warns_and_takes_the_torch_step(tmp_path, monkeypatch):
    monkeypatch.setenv("CC", str(tmp_path / "no-such-compiler"))
    monkeypatch.setenv(spike_kernel.ENV_DIR, str(tmp_path / "cache"))
    spike_kernel.library.cache_clear()
    try:
        with pytest.warns(RuntimeWarning, match="Install a C compiler"):
            assert spike_kernel.library() is None
        net, spikes, est = _case(IF_CASES["counts, symmetric"])
        engine = TorchEngine(net, est, Relaxation(), spikes=spikes, dtype="float64")
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # warned once, not at every phase
            assert not engine.spiking.fused(torch.zeros(1, dtype=torch.float64))
        W, b = _params(net)
        x, d = _digits(net, 3)
        engine.epoch(W, b, x, d, np.ones(3), 3, x[:1])
        assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())
    finally:
        spike_kernel.library.cache_clear()
