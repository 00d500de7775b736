"""Schedules: the per-sample tables that drive one Brian2 run.

Images, targets, the sign of β and the learning factors of every sample, in
order; the engine turns them into ``TimedArray`` objects with one row per
sample.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...model.estimators import Estimator


@dataclass(frozen=True)
class Schedule:
    """Per-sample tables driving one Brian2 run (``n`` samples in order).

    Attributes
    ----------
    pixels : (n, N_in) array in [0, 1]
    targets : (n, N_out) one-hot array
    nudge_sign : (n,) array of ±1, sign of β in the first nudged phase
    ep_factor : (n,) array, the estimator's factor (0 = do not learn)
    apply_scale : (n,) array, ``1 / batch size`` at a batch's last sample, else 0
    step_scale : (n,) array, ``ep_factor / batch size`` for every sample (the
        continual rule's per-step factor; 0 = do not learn)
    decay_scale : (n,) array, the learning-rate schedule's factor of this epoch
        (1 without one; 0 = do not learn): it scales ``lr · λ`` of the
        Kolen–Pollack decay as it scales the rates
    """

    pixels: np.ndarray
    targets: np.ndarray
    nudge_sign: np.ndarray
    ep_factor: np.ndarray
    apply_scale: np.ndarray
    step_scale: np.ndarray
    decay_scale: np.ndarray

    @property
    def n(self) -> int:
        return len(self.pixels)


def make_schedule(x, d, estimator: Estimator, rng=None, batch_size: int = 1,
                  learn: bool = True, signs=None) -> Schedule:
    """Schedule for samples ``x`` (n, N_in) with targets ``d`` (n, N_out).

    With ``learn`` the samples are consecutive minibatches of ``batch_size``
    (the last one may be smaller); otherwise they are only simulated.
    """
    n = len(x)
    if signs is None:
        signs = estimator.signs(n, rng if rng is not None else np.random.default_rng(0))
    factor = estimator.factors(signs) if learn else np.zeros(n)
    scale, step_scale = np.zeros(n), np.zeros(n)
    if learn:
        ends = np.minimum(np.arange(batch_size, n + batch_size, batch_size), n)
        sizes = np.diff(np.concatenate([[0], ends]))
        scale[ends - 1] = 1.0 / sizes
        step_scale = factor / np.repeat(sizes, sizes)
    # a learning-rate schedule reaches the engine as factors scaled by ``scale``
    decay_scale = np.full(n, float(getattr(estimator, "scale", 1.0)) if learn else 0.0)
    return Schedule(np.ascontiguousarray(x, float), np.ascontiguousarray(d, float),
                    np.ascontiguousarray(signs, float), factor, scale, step_scale,
                    decay_scale)


SCHEDULE_FIELDS = ("pixels", "targets", "nudge_sign", "ep_factor", "apply_scale",
                   "step_scale", "decay_scale")
#: the per-sample tables each plasticity rule reads
RULE_TABLES = {"phase": ("pixels", "targets", "nudge_sign", "ep_factor", "apply_scale"),
               "continual": ("pixels", "targets", "nudge_sign", "step_scale")}


def concat(*schedules: Schedule) -> Schedule:
    return Schedule(*(np.concatenate([getattr(s, f) for s in schedules])
                      for f in SCHEDULE_FIELDS))
