"""The batched PyTorch twin of the Brian2 engine (CPU or GPU).

- :mod:`cortex_ep.twin.relax` — tensors, the relaxation loop, to a step count or a tolerance
- :mod:`cortex_ep.twin.engine` — EP training with any estimator
- :mod:`cortex_ep.twin.truth` — the exact gradient of C(s⁰): implicit differentiation and BPTT
- :mod:`cortex_ep.twin.backprop` — the backprop baselines (feedforward MLP, recurrent backprop)
"""
