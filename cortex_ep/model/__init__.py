"""The description and the mathematics: what every engine simulates.

- :mod:`~cortex_ep.model.spec` — populations, projections, :class:`Network`;
- :mod:`~cortex_ep.model.defaults` — the validated initial scale and learning rates;
- :mod:`~cortex_ep.model.energy` — ρ, E, C, F and the projected Euler step (the
  single reference of the formulas);
- :mod:`~cortex_ep.model.dynamics` — relaxation of the phases, for numpy and torch;
- :mod:`~cortex_ep.model.relaxation` — :class:`Relaxation`: steps, noise, activation;
- :mod:`~cortex_ep.model.estimators` — one-sided, symmetric and random-sign EP;
- :mod:`~cortex_ep.model.plasticity` — when synapses change (phase or continual rule);
- :mod:`~cortex_ep.model.neurons` — neuron models: rate units, Poisson or integrate-and-fire
  spiking units.
"""
