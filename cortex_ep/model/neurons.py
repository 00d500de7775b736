"""Spiking neurons: a neuron model whose synapses see filtered spikes, not rates.

Each hidden and output unit keeps the rate model's state ``s`` (:mod:`cortex_ep.model.energy`) and
emits Poisson spikes at ``r_max · ρ(s)``.  Its synapses see the spikes filtered
by an exponential synapse (τ_syn), scaled so that the mean current equals the
rate model's ``w ρ``; the plasticity rules see an exponential spike trace
(τ_trace) of mean ρ in place of ρ.  The clamped input stays a rate current.

Why Poisson and not LIF: a Poisson unit's rate *is* ``r_max · ρ(s)``, so the
spiking network has the rate model's fixed point exactly in expectation and
the only difference is spike noise, which shrinks like ``1/√(spikes)``.  A LIF
unit's rate-current curve is not the hard sigmoid; comparing the gradients
would then mix two effects.

Phases are given in ms of biological time at a fine ``dt``; the network keeps
its τ, so the rate model (dt 5 ms, 20 free and 4 nudged steps) and the
spiking one (dt 0.5 ms, 100 ms free, 40 ms nudged) describe the same
relaxation.

EqSpike (Martin et al. 2021, arXiv:2010.07859) trains spiking EP networks on
MNIST to 97.6 %; it has no public code.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import numpy as np

#: ``--neurons``: what a unit's synapses see
NEURON_MODELS = ("rate", "spiking")


@dataclass(frozen=True)
class Spiking:
    """Parameters of the spiking neuron model.

    Parameters
    ----------
    r_max_hz : float
        Rate at ρ = 1 (Hz).
    tau_syn_ms : float
        Time constant of the exponential synaptic current (ms).
    tau_trace_ms : float
        Time constant of the spike trace the plasticity rule reads (ms).
    dt_ms : float
        Integration step (ms); must divide the phase lengths.
    free_ms, nudged_ms : float
        Length of the free phase and of each nudged phase (ms).
    """

    r_max_hz: float = 1000.0
    tau_syn_ms: float = 5.0
    tau_trace_ms: float = 10.0
    dt_ms: float = 0.5
    free_ms: float = 100.0
    nudged_ms: float = 40.0

    def __post_init__(self):
        for name, value in asdict(self).items():
            if not (isinstance(value, (int, float, np.floating)) and np.isfinite(value)
                    and value > 0):
                raise ValueError(f"spiking {name} = {value!r}: must be a positive number")
        for name in ("free_ms", "nudged_ms"):
            steps = getattr(self, name) / self.dt_ms
            if abs(steps - round(steps)) > 1e-9:
                raise ValueError(f"spiking {name} = {getattr(self, name)} ms is not a whole "
                                 f"number of dt = {self.dt_ms} ms steps; choose a multiple")
        if self.r_max_hz * self.dt_ms / 1000.0 > 1.0:
            raise ValueError(f"r_max = {self.r_max_hz} Hz with dt = {self.dt_ms} ms gives a "
                             "spike probability above 1 per step; lower r_max or dt")

    @property
    def free_steps(self) -> int:
        return int(round(self.free_ms / self.dt_ms))

    @property
    def nudged_steps(self) -> int:
        return int(round(self.nudged_ms / self.dt_ms))

    @property
    def spike_current(self) -> float:
        """Jump of the synaptic current per spike and unit weight, so that its mean
        is ``w ρ``: ``1 / (r_max τ_syn)``."""
        return 1000.0 / (self.r_max_hz * self.tau_syn_ms)

    @property
    def trace_jump(self) -> float:
        """Jump of the spike trace per spike, so that its mean is ρ: ``1 / (r_max τ_trace)``."""
        return 1000.0 / (self.r_max_hz * self.tau_trace_ms)

    def spikes_per_phase(self) -> float:
        """Spikes a unit at ρ = 1 fires in one free phase (``r_max · T_free``)."""
        return self.r_max_hz * self.free_ms / 1000.0

    def timed(self, net, relaxation):
        """The network at this model's ``dt`` and the relaxation in its steps.

        Returns
        -------
        net : Network with ``dt = dt_ms``
        relaxation : Relaxation with the free and nudged phase lengths in steps
        """
        return (replace(net, dt=float(self.dt_ms)),
                replace(relaxation, free_steps=self.free_steps,
                        nudged_steps=self.nudged_steps))

    def attrs(self) -> dict:
        """netCDF-safe description (prefixed ``spike_``)."""
        return {f"spike_{k}": float(v) for k, v in asdict(self).items()}


def neuron_model(neurons: str, **params) -> Spiking | None:
    """``None`` for rate neurons, else the :class:`Spiking` model with ``params``."""
    if neurons not in NEURON_MODELS:
        raise ValueError(f"unknown neuron model {neurons!r}; choose one of "
                         f"{', '.join(NEURON_MODELS)}")
    if neurons == "rate":
        if params:
            raise ValueError(f"{', '.join(sorted(params))}: spiking parameters need "
                             "--neurons spiking")
        return None
    return Spiking(**params)


#: command-line options of the spiking model: (flag, unit, help) by field
OPTIONS = {"r_max_hz": ("--r-max", "HZ", "rate at rho = 1"),
           "free_ms": ("--free-ms", "MS", "free phase length"),
           "nudged_ms": ("--nudged-ms", "MS", "nudged phase length"),
           "dt_ms": ("--spike-dt", "MS", "integration step"),
           "tau_trace_ms": ("--tau-trace", "MS", "time constant of the plasticity traces")}


def from_options(neurons: str, model=None, **given) -> Spiking | None:
    """The run's neuron model: the model's ``SPIKING`` settings overridden by the
    ``given`` fields that are not None."""
    given = {k: v for k, v in given.items() if v is not None}
    if neurons == "spiking":
        given = {**getattr(model, "SPIKING", {}), **given}
    elif given:
        flags = ", ".join(OPTIONS[k][0] for k in sorted(given))
        raise ValueError(f"{flags}: spiking parameters need --neurons spiking")
    return neuron_model(neurons, **given)
