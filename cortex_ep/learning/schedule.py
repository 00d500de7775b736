"""Learning rates that change across epochs: a schedule and the engine wrapper that applies it.

Every engine takes its rates from the network description when it is built,
and some compile them in (Brian2's ``cpp_standalone``).  A schedule therefore
rebuilds the engine at each epoch whose rate factor differs from the last
one, from the network with every projection's (and lateral) rate multiplied by
the factor; the engine's own random state carries over.  The Brian2 engine is
the exception: a rebuild there means a new C++ project, so it is built once
and the factor multiplies the estimator's per-sample learning factors instead,
which every update of a sample (weights, biases, lateral and feedback
weights, both plasticity rules) is proportional to, and which reach the
binary as a table at each run.  The learning loop
(:func:`cortex_ep.learning.loop.train`) sees an ordinary engine.

Schedules
---------
``constant``
    factor 1 (the engine is built once).
``cosine``
    ``½ (1 + cos(π e / E))`` at epoch ``e`` of ``E`` (0-based): the rates fall
    smoothly from their full value to near 0 in the last epoch (cosine
    annealing without restarts).
"""

from __future__ import annotations

import math
from dataclasses import replace

SCHEDULES = ("constant", "cosine")


def lr_factor(schedule: str, epoch: int, epochs: int) -> float:
    """Multiplier of every learning rate during 0-based ``epoch`` of ``epochs``."""
    if schedule not in SCHEDULES:
        raise ValueError(f"unknown learning-rate schedule {schedule!r}; choose one of "
                         f"{', '.join(SCHEDULES)}")
    if schedule == "constant":
        return 1.0
    return 0.5 * (1.0 + math.cos(math.pi * epoch / epochs))


def scaled_rates(net, factor: float):
    """``net`` with every projection's and every lateral rate times ``factor``."""
    projs = tuple(replace(p, lr=p.lr * factor) for p in net.projections)
    pops = tuple(replace(p, lateral_lr=p.lateral_lr * factor) if p.lateral else p
                 for p in net.populations)
    return replace(net, populations=pops, projections=projs)


class ScaledFactors:
    """``estimator`` with its per-sample learning factors multiplied by ``scale``."""

    def __init__(self, estimator, scale: float):
        self.estimator, self.scale = estimator, scale

    def factors(self, signs):
        return self.scale * self.estimator.factors(signs)

    def __getattr__(self, name):
        if name == "estimator":
            raise AttributeError(name)
        return getattr(self.estimator, name)


#: engines that take the schedule through their estimator's factors, built once
FACTOR_SCALED = ("brian",)


class ScheduledEngine:
    """An engine whose learning rates follow ``schedule`` over ``config.epochs``.

    Parameters
    ----------
    net : Network
        The network at its full rates.
    config : TrainConfig
    schedule : str
        One of :data:`SCHEDULES`.
    done_epochs : int
        Epochs already trained (a resumed run continues the schedule).
    """

    def __init__(self, net, config, schedule: str = "cosine", done_epochs: int = 0):
        from ..engines.registry import make_engine

        lr_factor(schedule, 0, 1)  # rejects an unknown schedule before any work
        self.net, self.config, self.schedule = net, config, schedule
        self.next_epoch = done_epochs
        self._make = make_engine
        self._factor = None
        self.engine = self._engine_for(done_epochs)

    def _engine_for(self, epoch: int):
        factor = lr_factor(self.schedule, epoch, self.config.epochs)
        if self.config.engine in FACTOR_SCALED and self._factor is not None:
            self.engine.estimator = ScaledFactors(self._estimator, factor)
            self._factor = factor
        elif self.config.engine in FACTOR_SCALED:
            self.engine = self._make(self.net, self.config)
            self._estimator = self.engine.estimator
            self.engine.estimator = ScaledFactors(self._estimator, factor)
            self._factor = factor
        elif factor != self._factor:
            state = self.engine.get_state() if self._factor is not None else None
            self.engine = self._make(scaled_rates(self.net, factor), self.config)
            if state is not None:
                self.engine.set_state(state)
            self._factor = factor
        return self.engine

    @property
    def factor(self) -> float:
        """The rate factor of the epoch about to run (or running)."""
        return lr_factor(self.schedule, self.next_epoch, self.config.epochs)

    def epoch(self, *args, **kwargs):
        """One epoch of the wrapped engine at this epoch's rates."""
        engine = self._engine_for(self.next_epoch)
        out = engine.epoch(*args, **kwargs)
        self.next_epoch += 1
        return out

    def record(self, *args, **kwargs):
        return self.engine.record(*args, **kwargs)

    def get_state(self) -> dict:
        return self.engine.get_state()

    def set_state(self, state: dict) -> None:
        self.engine.set_state(state)

    def __getattr__(self, name):
        # anything else (predict, phases, ...) is the wrapped engine's
        if name == "engine":
            raise AttributeError(name)
        return getattr(self.engine, name)
