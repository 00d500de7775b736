"""How good is the EP gradient: estimates against the exact gradient.

- :mod:`~cortex_ep.gradients.gradcheck` — the phase rule's estimate for every β
  and estimator, bias and variance under noise;
- :mod:`~cortex_ep.gradients.continual` — the continual rule's total update;
- :mod:`~cortex_ep.gradients.alignment` — how well separate feedback matches the
  forward weights, and the cosine of EP's update to the gradient.
"""
