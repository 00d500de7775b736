"""How good is the EP gradient: estimates against the exact gradient.

- :mod:`~cortex_ep.gradients.gradcheck` — the phase rule's estimate for every β
  and estimator, bias and variance under noise;
- :mod:`~cortex_ep.gradients.continual` — the continual rule's total update.
"""
