"""Neuron models: how a unit turns its state ``s`` into what its synapses see.

``rate``
    The unit passes ``ρ(s)`` (:mod:`cortex_ep.model.energy`); no object here.
``spiking`` (:class:`Spiking`)
    Poisson spikes at ``r_max · ρ(s)``.  A count over T ms has the noise
    ``√(r_max ρ T)``: a rate read from it errs like ``1/√T``.
``if`` (:class:`IntegrateAndFire`)
    A membrane ``v`` integrates ``θ · r_max · ρ(s)``; at ``v ≥ θ`` the unit
    spikes and ``θ`` is subtracted (reset by subtraction, a sigma-delta code,
    O'Connor, Gavves & Welling 2019).  The count over any window is then
    ``∫ r_max ρ dt`` to within one spike: the error falls like ``1/T``.  A leak
    (τ_m), a refractory period and membrane noise σ make it a leaky
    integrate-and-fire unit whose inter-spike intervals grow irregular
    (coefficient of variation from 0 toward cortex's ≈ 1), at the price of a
    rate that no longer equals ``r_max ρ``.

Every spiking unit keeps the rate model's state ``s``; its synapses see its
spikes filtered by an exponential synapse (τ_syn) scaled so that the mean
current equals the rate model's ``w ρ``.  The clamped input stays a rate
current.  What the plasticity reads of a unit (its *read-out*):

``trace``
    an exponential spike trace (τ_trace) of mean ρ, read at the end of each
    phase by the phase rule and at every step by the continual rule;
``count``
    the phase rule reads ``n / (r_max T)``, the unit's spike count ``n`` over a
    window of ``T`` = the nudged phase's length: each nudged phase, and the last
    ``T`` ms of the free phase (estimators that compare with it).  The
    continual rule, which needs a value at every step, reads the trace.

Phases are given in ms of biological time at a fine ``dt``; the network keeps
its τ, so the rate model (dt 5 ms, 20 free and 4 nudged steps) and the
spiking one (dt 0.5 ms, 100 ms free, 40 ms nudged) describe the same
relaxation.

Each model states its own Brian2 formulas (threshold, reset, membrane
equations, the state a restarted phase takes back), so an engine composes
them without asking which model it has.

EqSpike (Martin et al. 2021, arXiv:2010.07859) trains spiking EP networks on
MNIST to 97.6 %; it has no public code.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace
from typing import ClassVar

import numpy as np

#: ``--neurons``: what a unit's synapses see
NEURON_MODELS = ("rate", "spiking", "if")
#: what the phase rule reads of a spiking unit
READOUTS = ("trace", "count")
#: integrate-and-fire: whether the membrane keeps its value when a new phase starts
MEMBRANE_MODES = ("carry", "reset")

#: the synaptic current of a spiking unit's dynamic synapses (a neuron variable)
SPIKE_CURRENT = "I_spikes"


def _named(name, value) -> str:
    """``name = value`` and, where the parameter has one, its command-line flag."""
    flag = f" ({OPTIONS[name][0]})" if name in OPTIONS else ""
    return f"{name} = {value!r}{flag}"


def _positive(name, value, allow_inf=False) -> None:
    ok = isinstance(value, (int, float, np.floating)) and not isinstance(value, bool)
    if not (ok and value > 0 and (np.isfinite(value) or (allow_inf and value == math.inf))):
        raise ValueError(f"{_named(name, value)}: must be a positive number"
                         + (" (inf: no leak)" if allow_inf else ""))


def _choice(name, value, choices) -> None:
    if value not in choices:
        raise ValueError(f"{_named(name, value)}: choose one of {', '.join(choices)}")


@dataclass(frozen=True)
class Spiking:
    """Poisson spiking units.

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
    readout : {"trace", "count"}
        What the phase rule reads of a unit (module docstring).
    """

    name: ClassVar[str] = "spiking"
    #: what ``r_max · dt > 1`` would ask of a unit
    too_fast: ClassVar[str] = "a spike probability above 1"

    r_max_hz: float = 1000.0
    tau_syn_ms: float = 5.0
    tau_trace_ms: float = 10.0
    dt_ms: float = 0.5
    free_ms: float = 100.0
    nudged_ms: float = 40.0
    readout: str = "trace"

    def __post_init__(self):
        for name in ("r_max_hz", "tau_syn_ms", "tau_trace_ms", "dt_ms", "free_ms",
                     "nudged_ms"):
            _positive(name, getattr(self, name))
        for name in ("free_ms", "nudged_ms"):
            steps = getattr(self, name) / self.dt_ms
            if abs(steps - round(steps)) > 1e-9:
                raise ValueError(f"spiking {name} = {getattr(self, name)} ms is not a whole "
                                 f"number of dt = {self.dt_ms} ms steps; choose a multiple")
        if self.r_max_hz * self.dt_ms / 1000.0 > 1.0 + 1e-12:
            raise ValueError(f"r_max = {self.r_max_hz} Hz with dt = {self.dt_ms} ms gives "
                             f"{self.too_fast} per step; lower r_max or dt")
        _choice("readout", self.readout, READOUTS)
        if self.counts and self.free_ms < self.nudged_ms:
            raise ValueError(f"readout count compares the nudged phase ({self.nudged_ms} ms) "
                             f"with as long a window at the end of the free phase "
                             f"({self.free_ms} ms): make the free phase at least as long")

    @property
    def free_steps(self) -> int:
        return int(round(self.free_ms / self.dt_ms))

    @property
    def nudged_steps(self) -> int:
        return int(round(self.nudged_ms / self.dt_ms))

    @property
    def counts(self) -> bool:
        """Whether the phase rule reads spike counts (else spike traces)."""
        return self.readout == "count"

    @property
    def spike_current(self) -> float:
        """Jump of the synaptic current per spike and unit weight, so that its mean
        is ``w ρ``: ``1 / (r_max τ_syn)``."""
        return 1000.0 / (self.r_max_hz * self.tau_syn_ms)

    @property
    def trace_jump(self) -> float:
        """Jump of the spike trace per spike, so that its mean is ρ: ``1 / (r_max τ_trace)``."""
        return 1000.0 / (self.r_max_hz * self.tau_trace_ms)

    @property
    def count_scale(self) -> float:
        """A count over one read-out window in units of ρ: ``1 / (r_max T_nudged)``."""
        return 1000.0 / (self.r_max_hz * self.nudged_ms)

    def spikes_per_phase(self) -> float:
        """Spikes a unit at ρ = 1 fires in one free phase (``r_max · T_free``)."""
        return self.r_max_hz * self.free_ms / 1000.0

    def spikes_per_window(self) -> float:
        """Spikes a unit at ρ = 1 fires in one nudged phase (``r_max · T_nudged``)."""
        return self.r_max_hz * self.nudged_ms / 1000.0

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
        return {f"spike_{k}": (v if isinstance(v, str) else float(v))
                for k, v in asdict(self).items()}

    # ------------------------------------------------------- Brian2 formulas
    def constants(self) -> dict:
        """Namespace constants of the formulas: ``{name: (value, Brian2 unit name)}``."""
        return {"r_max": (self.r_max_hz, "Hz"), "tau_syn": (self.tau_syn_ms, "ms"),
                "tau_trace": (self.tau_trace_ms, "ms"), "spike_current": (self.spike_current, ""),
                "trace_jump": (self.trace_jump, ""), "count_scale": (self.count_scale, "")}

    def equations(self) -> list[str]:
        """State of a unit besides ``s``: its synaptic current, trace and count."""
        return [f"d{SPIKE_CURRENT}/dt = -{SPIKE_CURRENT} / tau_syn : 1",
                "dx/dt = -x / tau_trace : 1", "n : 1",
                *(f"{v}0 : 1" for v in self.restarted)]

    @property
    def threshold_code(self) -> str:
        """The spike condition."""
        return "rand() < r_max * r * dt"

    @property
    def reset(self) -> str:
        """Code run at each spike, before anything reads the trace or the count."""
        return "x += trace_jump\nn += 1"

    @property
    def refractory_period_ms(self) -> float:
        """Refractory period (ms); 0: none."""
        return 0.0

    @property
    def restarted(self) -> tuple[str, ...]:
        """Variables besides ``s`` that a phase restarted from the free fixed point takes back."""
        return (SPIKE_CURRENT, "x")

    def phase_start_code(self) -> list[str]:
        """Code run when a phase ends and the next starts from the same state."""
        return []

    def cleared(self) -> list[str]:
        """Variables set to 0 between samples."""
        return [SPIKE_CURRENT, "x", "n"]

    def sample_end_code(self) -> list[str]:
        """Code run between samples besides clearing :meth:`cleared`."""
        return []


@dataclass(frozen=True)
class IntegrateAndFire(Spiking):
    """Integrate-and-fire units with reset by subtraction.

    Parameters
    ----------
    r_max_hz, tau_syn_ms, tau_trace_ms, dt_ms, free_ms, nudged_ms
        As in :class:`Spiking`.
    readout : {"count", "trace"}
        What the phase rule reads (default: spike counts).
    threshold : float
        Threshold θ of the membrane; the drive is ``θ · r_max · ρ(s)``, so without
        leak and noise the unit fires at ``r_max ρ`` whatever θ.
    tau_m_ms : float
        Membrane time constant (ms); ``inf`` (default): no leak.
    refractory_ms : float
        Refractory period (ms) during which the membrane holds; 0: none.
    membrane_noise : float
        Membrane noise σ in units of θ per √ms (the membrane's standard
        deviation after 1 ms of diffusion); the membrane is floored at 0.
    membrane : {"carry", "reset"}
        ``carry``: a phase starts from the membrane the last one left (a
        restarted −β phase from the free phase's); ``reset``: at 0.
    """

    name: ClassVar[str] = "if"
    too_fast: ClassVar[str] = "more than the one spike a unit can fire"

    readout: str = "count"
    threshold: float = 1.0
    tau_m_ms: float = math.inf
    refractory_ms: float = 0.0
    membrane_noise: float = 0.0
    membrane: str = "carry"

    def __post_init__(self):
        super().__post_init__()
        _positive("threshold", self.threshold)
        _positive("tau_m_ms", self.tau_m_ms, allow_inf=True)
        for name in ("refractory_ms", "membrane_noise"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float, np.floating)) and np.isfinite(value)
                    and value >= 0):
                raise ValueError(f"{_named(name, value)}: must be a number >= 0 "
                                 "(0: none)")
        shortest = min(self.free_ms, self.nudged_ms)
        if self.refractory_ms >= shortest:
            raise ValueError(f"refractory period {self.refractory_ms} ms is not shorter than "
                             f"the shortest phase ({shortest} ms): a unit could fire at most "
                             "once per phase; choose a refractory period below "
                             f"{shortest} ms (cortex: 1-5 ms)")
        _choice("membrane", self.membrane, MEMBRANE_MODES)

    def constants(self) -> dict:
        return {**super().constants(), "v_threshold": (self.threshold, ""),
                "tau_m": (self.tau_m_ms, "ms"),
                # σ θ per √ms, as a diffusion coefficient of xi (units 1/√s)
                "sigma_membrane": (self.membrane_noise * self.threshold, "1/sqrt(ms)")}

    def equations(self) -> list[str]:
        leak = " - v / tau_m" if np.isfinite(self.tau_m_ms) else ""
        noise = " + sigma_membrane * xi_membrane" if self.membrane_noise > 0 else ""
        hold = " (unless refractory)" if self.refractory_ms > 0 else ""
        return [*super().equations(),
                f"dv/dt = v_threshold * r_max * r{leak}{noise} : 1{hold}"]

    @property
    def threshold_code(self) -> str:
        return "v >= v_threshold"

    @property
    def reset(self) -> str:
        return f"v -= v_threshold\n{super().reset}"

    @property
    def refractory_period_ms(self) -> float:
        return self.refractory_ms

    @property
    def restarted(self) -> tuple[str, ...]:
        return (*super().restarted, *(("v",) if self.membrane == "carry" else ()))

    def phase_start_code(self) -> list[str]:
        return ["v = 0"] if self.membrane == "reset" else []

    def cleared(self) -> list[str]:
        return [*super().cleared(), "v"]

    def sample_end_code(self) -> list[str]:
        # a sample starts out of refractoriness, as the first one does (Brian2's
        # initial lastspike): the twin's batched samples cannot inherit a spike
        return ["lastspike = -10000 * second"] if self.refractory_ms > 0 else []


#: the classes of the spiking ``--neurons`` choices
MODELS = {"spiking": Spiking, "if": IntegrateAndFire}
#: the attribute of a model module holding each neuron model's settings
SETTINGS = {"spiking": "SPIKING", "if": "IF"}


def neuron_model(neurons: str, **params) -> Spiking | None:
    """``None`` for rate neurons, else the spiking model ``neurons`` with ``params``."""
    if neurons not in NEURON_MODELS:
        raise ValueError(f"unknown neuron model {neurons!r}; choose one of "
                         f"{', '.join(NEURON_MODELS)}")
    if neurons == "rate":
        if params:
            raise ValueError(f"{_flags(params)}: spiking parameters need --neurons "
                             "spiking or --neurons if")
        return None
    cls = MODELS[neurons]
    known = {f.name for f in fields(cls)}
    alien = {k for k in params if k not in known}
    if alien:
        raise ValueError(f"{_flags(alien)}: parameters of integrate-and-fire units; use "
                         "--neurons if")
    return cls(**params)


def _flags(names) -> str:
    return ", ".join(OPTIONS[k][0] if k in OPTIONS else k for k in sorted(names))


#: command-line options of the spiking models: (flag, metavar or choices, type, help) by
#: field; the fields of :class:`IntegrateAndFire` alone need ``--neurons if``
OPTIONS = {"r_max_hz": ("--r-max", "HZ", float, "rate at rho = 1"),
           "free_ms": ("--free-ms", "MS", float, "free phase length"),
           "nudged_ms": ("--nudged-ms", "MS", float, "nudged phase length"),
           "dt_ms": ("--spike-dt", "MS", float, "integration step"),
           "tau_trace_ms": ("--tau-trace", "MS", float,
                            "time constant of the plasticity traces"),
           "readout": ("--readout", READOUTS, str,
                       "what the phase rule reads: spike traces at the phase ends or "
                       "spike counts over each phase's window"),
           "threshold": ("--threshold", "THETA", float,
                         "membrane threshold (the drive scales with it)"),
           "tau_m_ms": ("--tau-m", "MS", float, "membrane leak time constant (inf: none)"),
           "refractory_ms": ("--refractory", "MS", float, "refractory period"),
           "membrane_noise": ("--membrane-noise", "SIGMA", float,
                              "membrane noise, in thresholds per sqrt(ms)"),
           "membrane": ("--membrane", MEMBRANE_MODES, str,
                        "keep the membrane across phase boundaries or reset it")}


def integrate_and_fire_only(field_name: str) -> bool:
    """Whether ``field_name`` is a parameter of integrate-and-fire units alone."""
    return field_name not in {f.name for f in fields(Spiking)}


def from_options(neurons: str, model=None, **given) -> Spiking | None:
    """The run's neuron model: the model module's settings for ``neurons``
    (``SPIKING``, ``IF``) overridden by the ``given`` fields that are not None."""
    given = {k: v for k, v in given.items() if v is not None}
    if neurons in SETTINGS:
        given = {**getattr(model, SETTINGS[neurons], {}), **given}
    return neuron_model(neurons, **given)
