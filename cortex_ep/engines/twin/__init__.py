"""The batched PyTorch twin of the Brian2 engine (CPU or GPU).

- :mod:`cortex_ep.engines.twin.relax` — tensors, the relaxation loop, to a step count or a tolerance
- :mod:`cortex_ep.engines.twin.engine` — EP training with any estimator
- :mod:`cortex_ep.engines.twin.spiking` — Poisson and integrate-and-fire units, batched
- :mod:`cortex_ep.engines.twin.spike_kernel` — the compiled phase of integrate-and-fire units (C)
- :mod:`cortex_ep.engines.twin.truth` — the exact gradient of C(s⁰): implicit differentiation and BPTT
- :mod:`cortex_ep.engines.twin.backprop` — the backprop baselines (feedforward MLP, recurrent backprop)
- :mod:`cortex_ep.engines.twin.threads` — the CPU thread policy for shared machines
"""

import os

# before torch loads its OpenMP runtime: idle worker threads sleep instead of
# spinning, so that a shared machine's cores are not burnt waiting (twin/threads.py)
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
