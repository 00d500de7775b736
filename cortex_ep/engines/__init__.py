"""The engines that simulate a :class:`~cortex_ep.model.spec.Network`; all agree.

- :mod:`~cortex_ep.engines.brian` — Brian2: NeuronGroups, Synapses, plasticity as
  synapse code (the default engine);
- :mod:`~cortex_ep.engines.twin` — the batched PyTorch twin: fast training, exact
  gradients, backprop baselines;
- :mod:`~cortex_ep.engines.reference` — plain numpy, the reference;
- :mod:`~cortex_ep.engines.registry` — the engines by name (:func:`make_engine`).
"""
