"""Training: the loop the engines share, and what keeps a long run safe.

- :mod:`~cortex_ep.learning.loop` — :class:`TrainConfig` and :func:`train`;
- :mod:`~cortex_ep.learning.checkpoint` — per-epoch checkpoints and resuming;
- :mod:`~cortex_ep.learning.health` — divergence and non-convergence checks;
- :mod:`~cortex_ep.learning.schedule` — learning-rate schedules;
- :mod:`~cortex_ep.learning.weights` — weights files.
"""
