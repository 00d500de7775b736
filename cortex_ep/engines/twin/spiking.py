"""Spiking units in the torch twin: Poisson and integrate-and-fire, a batch at once.

The twin runs the step of the Brian2 engine (:mod:`cortex_ep.engines.brian.equations`)
in the order Brian2's schedule runs it within one time step:

1. every state advances one Euler step from the old values: ``s`` (then
   projected onto [0, 1]), the synaptic current, the trace and, for
   integrate-and-fire units, the membrane (``dt θ r_max ρ(s)``, leak, noise;
   held while refractory; floored at 0 where it can fall);
2. units spike: integrate-and-fire ones at ``v ≥ θ``, Poisson ones with
   probability ``r_max ρ(s) dt``;
3. a read window that opens at this step clears the count; each spike
   subtracts θ from its membrane and raises its trace and count;
4. a phase that ends at this step stores what the phase rule reads; the free
   phase also stores the state that a restarted phase takes back, and the
   phase after it restores that state;
5. this step's spikes reach the synaptic currents of the populations they
   project to.

Integrate-and-fire units are deterministic: with the same weights, digits and
float64 the twin fires the spikes Brian2 fires, up to a threshold tie that
the two round differently (the tests report the first step where spikes
differ).  Poisson spikes and noise come from the twin's own generator, so
those runs agree in distribution.

On the CPU, integrate-and-fire units without noise run a whole phase as one
compiled loop per sample instead (:mod:`cortex_ep.engines.twin.spike_kernel`):
the same steps, with each spike's weights added row by row as Brian2 does.

Every state is one unit-major tensor ``(N, batch)`` over the units of all dynamic
populations, one after the other: a step is then a handful of tensor operations
whatever the number of populations, a population is a block of rows, and the
spike products are ``(N_post, N_pre) @ (N_pre, batch)``, several times faster on
a CPU than ``(batch, N_pre) @ (N_pre, 10)`` for a 10-unit output.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ...model import energy
from ...model.estimators import Estimator
from ...model.neurons import Spiking
from ...model.relaxation import Relaxation
from ...model.spec import Network
from . import spike_kernel, threads


@dataclass
class SpikingState:
    """What the units hold, each ``(N, batch)`` over all dynamic units.

    ``s``: the rate model's state; ``current``: the synaptic current of the
    spikes reaching the unit; ``trace``: the spike trace; ``count``: spikes
    since the read window opened; ``membrane``: integrate-and-fire only;
    ``refractory``: integrate-and-fire units with a refractory period, one
    more than the steps of refractoriness left after this one.  Variables a
    model does not use are None.  ``spare`` and ``fired`` are the step's
    scratch space (the next ``s``, the spikes): a new tensor of this size per
    operation costs a CPU more than the arithmetic.
    """

    s: torch.Tensor
    current: torch.Tensor
    spare: torch.Tensor
    fired: torch.Tensor
    trace: torch.Tensor | None = None
    count: torch.Tensor | None = None
    membrane: torch.Tensor | None = None
    refractory: torch.Tensor | None = None

    def copy(self, names) -> dict:
        """Clones of the variables ``names`` for a later :meth:`restore`."""
        return {n: getattr(self, n).clone() for n in names}

    def restore(self, saved: dict) -> None:
        for name, value in saved.items():
            getattr(self, name).copy_(value)


#: the Brian2 names of the restarted variables (:attr:`Spiking.restarted`) in SpikingState
RESTARTED = {"I_spikes": "current", "x": "trace", "v": "membrane"}


class SpikingNetwork:
    """A network of spiking units in torch for batches of samples (phase rule).

    Parameters
    ----------
    net : Network
        At the neuron model's ``dt`` (:meth:`~cortex_ep.model.neurons.Spiking.timed`).
    spikes : Spiking
        Poisson or integrate-and-fire units (:mod:`cortex_ep.model.neurons`).
    estimator : Estimator
    relaxation : Relaxation
        In the neuron model's steps: the free and nudged phase lengths, the
        activation and the noise σ of ``s``.
    generator : torch.Generator
        Draws Poisson spikes and noise.
    """

    def __init__(self, net: Network, spikes: Spiking, estimator: Estimator,
                 relaxation: Relaxation, generator: torch.Generator):
        self.net, self.spikes, self.estimator = net, spikes, estimator
        self.relaxation, self.generator = relaxation, generator
        self.activation = energy.get_activation(relaxation.activation)
        # the hard sigmoid of a state kept in [0, 1] is the state, its slope 1
        self.hard = relaxation.activation == "hard_sigmoid"
        self.integrate = spikes.name == "if"
        self.h = net.dt / net.tau
        self.per_step = spikes.r_max_hz * net.dt / 1000.0  # spikes per step at ρ = 1
        self.keeps_trace = not spikes.counts
        self.current_decay = 1.0 - net.dt / spikes.tau_syn_ms
        self.trace_decay = 1.0 - net.dt / spikes.tau_trace_ms
        self.leaky = self.integrate and math.isfinite(spikes.tau_m_ms)
        # Brian2 counts a refractory period in whole steps: timestep(refractory, dt)
        self.refractory_steps = int(spikes.refractory_period_ms / net.dt + 1e-3)
        self.membrane_noise = (spikes.membrane_noise * spikes.threshold * math.sqrt(net.dt)
                               if self.integrate else 0.0)
        self.threshold = float(spikes.threshold) if self.integrate else 1.0
        self.resets_membrane = self.integrate and spikes.membrane == "reset"
        restarted = [RESTARTED[v] for v in spikes.restarted
                     if RESTARTED[v] != "trace" or self.keeps_trace]
        self.restarted = ("s", *restarted)
        ends = np.cumsum([0] + [p.size for p in net.dynamic])
        #: the rows of every dynamic population
        self.rows = {p.name: slice(int(a), int(e))
                     for p, a, e in zip(net.dynamic, ends[:-1], ends[1:])}
        self.size = int(ends[-1])
        #: integrate-and-fire units without random numbers run a phase as one compiled
        #: loop on the CPU (:mod:`~cortex_ep.engines.twin.spike_kernel`)
        self.fusable = (self.integrate and self.hard and not self.membrane_noise
                        and not relaxation.noise and not net.lateral)
        self._converted = None  # (couplings, pathways, weights) of the last compiled phase

    # -------------------------------------------------------------- state
    def fused(self, like: torch.Tensor) -> bool:
        """Whether phases with tensors like ``like`` run in the compiled loop."""
        return (self.fusable and like.device.type == "cpu"
                and spike_kernel.library() is not None)

    def _zero_state(self, batch: int, like: torch.Tensor) -> SpikingState:
        def zeros():
            if self.fused(like):  # (N, batch) views of sample-major storage
                return like.new_zeros((batch, self.size)).T
            return like.new_zeros((self.size, batch))

        return SpikingState(
            s=zeros(), current=zeros(), spare=zeros(), fired=zeros(),
            trace=zeros() if self.keeps_trace else None,
            count=zeros() if self.spikes.counts else None,
            membrane=zeros() if self.integrate else None,
            refractory=zeros() if self.refractory_steps > 0 else None)

    def _read(self, st: SpikingState) -> torch.Tensor:
        """What the phase rule reads of every unit now, ``(N, batch)``."""
        if self.spikes.counts:
            return st.count * self.spikes.count_scale
        return st.trace.clone()

    def _drive(self, x, W, b) -> torch.Tensor:
        """``I_input + b`` of every unit, ``(N, batch)``: constant while ``x`` is clamped."""
        inputs = energy.input_currents(self.net, x, W, self.relaxation.activation)
        drive = x.new_empty((self.size, len(x)))
        for name, rows in self.rows.items():
            drive[rows] = b[name][:, None]
            if name in inputs:
                drive[rows] += inputs[name].T
        return drive

    def _couplings(self, W) -> list:
        """``(pre rows, post rows, matrix)`` for every spike pathway between dynamic
        populations: ``current[post] += matrix @ z[pre]``, the jump per spike folded in."""
        jump, rows = self.spikes.spike_current, self.rows
        out = []
        for proj in self.net.projections:
            if proj.pre == self.net.input.name:
                continue
            out.append((rows[proj.pre], rows[proj.post], (jump * W[proj.name].T).contiguous()))
            out.append((rows[proj.post], rows[proj.pre],
                        (jump * energy.top_down(proj, W)).contiguous()))
        for pop in self.net.lateral:
            out.append((rows[pop.name], rows[pop.name],
                        jump * W[energy.lateral_name(pop.name)]))
        return out

    # --------------------------------------------------------------- step
    def _step(self, st: SpikingState, drive, nudge, decay, window_opens: bool):
        """Steps 1–3 of the module docstring; returns this step's spikes ``(N, batch)``.

        ``drive``: ``h (I_input + b)``, and for the hard sigmoid the nudge ``h β d``
        too; ``nudge``: otherwise ``h β d`` (None: no nudge or folded in);
        ``decay``: ``1 − h − h β`` on nudged output units, ``1 − h`` elsewhere (a
        tensor, or a float where it is uniform).
        """
        h, s = self.h, st.s
        old_rate = s if self.hard else self.activation.rho(s)
        new = torch.add(drive, st.current, alpha=h, out=st.spare)
        if not self.hard:
            new.mul_(self.activation.rho_prime(s))
            if nudge is not None:
                new.add_(nudge)
        if isinstance(decay, float):
            new.add_(s, alpha=decay)
        else:
            new.addcmul_(s, decay)
        if self.relaxation.noise:
            new.add_(self._normal(new), alpha=self.relaxation.noise * math.sqrt(h))
        new.clamp_(0.0, 1.0)
        st.current.mul_(self.current_decay)
        if self.keeps_trace:
            st.trace.mul_(self.trace_decay)
        if self.integrate:
            self._integrate(st, old_rate)
        st.s, st.spare = new, s
        if self.integrate:
            z = (torch.floor(st.membrane, out=st.fired) if self.threshold == 1.0
                 else torch.div(st.membrane, self.threshold, out=st.fired).floor_())
            if self.membrane_noise:  # noise can carry the membrane past 2θ
                z.clamp_(max=1.0)
            if self.refractory_steps > 0:
                # ... and past θ again after the spike, where it holds while refractory
                z.mul_(st.refractory <= 0)
            st.membrane.sub_(z, alpha=self.threshold)
            if self.refractory_steps > 0:
                st.refractory.add_(z, alpha=self.refractory_steps)
        else:
            rate = st.s if self.hard else self.activation.rho(st.s)
            # a uniform u in [0, 1) gives floor(u + p) = 1 with probability p
            z = torch.rand(rate.shape, generator=self.generator, dtype=rate.dtype,
                           device=rate.device, out=st.fired)
            z.add_(rate, alpha=self.per_step).floor_()
        if self.keeps_trace:
            st.trace.add_(z, alpha=self.spikes.trace_jump)
        if self.spikes.counts:
            if window_opens:
                st.count.zero_()
            st.count.add_(z)
        return z

    def _normal(self, like):
        return torch.randn(like.shape, generator=self.generator, dtype=like.dtype,
                           device=like.device)

    def _integrate(self, st: SpikingState, rate) -> None:
        """The membrane's Euler step (step 1) from the rates at the step's start."""
        v, drive = st.membrane, self.threshold * self.per_step
        if not (self.leaky or self.membrane_noise or self.refractory_steps):
            v.add_(rate, alpha=drive)
            return
        change = rate * drive
        if self.leaky:
            change.sub_(v, alpha=self.net.dt / self.spikes.tau_m_ms)
        if self.membrane_noise:
            change.add_(self._normal(v), alpha=self.membrane_noise)
        if self.refractory_steps > 0:
            left = st.refractory
            # Brian2 holds the membrane until the period's steps have passed since the
            # spike; the spike step set ``left`` to that number
            change.mul_(left <= 1)
            left.sub_(1.0).clamp_(min=0.0)
        v.add_(change).clamp_(min=0.0)

    @staticmethod
    def _propagate(st: SpikingState, spikes, couplings: list) -> None:
        """Step 5: this step's spikes into the synaptic currents."""
        for pre, post, matrix in couplings:
            if matrix.ndim == 3:  # lateral blocks (C, K, K), symmetric
                n_col, k = matrix.shape[:2]
                z = spikes[pre].reshape(n_col, k, -1)
                st.current[post] += torch.bmm(matrix, z).reshape(n_col * k, -1)
            else:
                st.current[post].addmm_(matrix, spikes[pre])

    # ------------------------------------------------------------- phases
    def _phase(self, st, steps, couplings, drive, nudge=None, decay=None, at_end=None,
               window_at=None, recorder=None):
        if decay is None:
            decay = 1.0 - self.h
        if recorder is None and self.fused(drive):
            self._fused_phase(st, steps, couplings, drive, decay, at_end, window_at)
            return
        for step in range(steps):
            spikes = self._step(st, drive, nudge, decay, step == window_at)
            if recorder is not None:
                recorder(st, spikes)
            if step == steps - 1 and at_end is not None:
                at_end(st)
            self._propagate(st, spikes, couplings)

    @staticmethod
    def _pathways(couplings: list):
        """The couplings as :mod:`~cortex_ep.engines.twin.spike_kernel` takes them:
        ``(K, 5)`` rows and every ``(N_pre, N_post)`` block in one array."""
        rows, blocks, offset = [], [], 0
        for pre, post, matrix in couplings:
            block = matrix.T.contiguous().reshape(-1)
            rows.append((pre.start, pre.stop, post.start, post.stop, offset))
            blocks.append(block)
            offset += block.numel()
        return np.asarray(rows, dtype=np.int64).reshape(-1, 5), torch.cat(blocks).numpy()

    def _fused_phase(self, st, steps, couplings, drive, decay, at_end, window_at):
        if isinstance(decay, float):
            decay = torch.full_like(drive, decay)
        state = {name: (None if getattr(st, attr) is None else getattr(st, attr).T.numpy())
                 for name, attr in (("s", "s"), ("current", "current"),
                                    ("membrane", "membrane"), ("count", "count"),
                                    ("trace", "trace"), ("left", "refractory"),
                                    ("fired", "fired"))}
        # the phases of a batch share their couplings: one conversion serves them all
        if self._converted is None or self._converted[0] is not couplings:
            self._converted = (couplings, *self._pathways(couplings))
        pathways, weights = self._converted[1:]
        spike_kernel.phase(
            state, drive.T.contiguous().numpy(), decay.T.contiguous().numpy(), pathways,
            weights, h=self.h, current_decay=self.current_decay, trace_decay=self.trace_decay,
            trace_jump=self.spikes.trace_jump, membrane_drive=self.threshold * self.per_step,
            leak=self.net.dt / self.spikes.tau_m_ms if self.leaky else 0.0,
            refractory_steps=self.refractory_steps, threshold=self.threshold, steps=steps,
            window_at=window_at, propagate_last=at_end is None,
            threads=threads.sample_threads())
        if at_end is not None:
            at_end(st)
            spike_kernel.propagate(state["current"], state["fired"], pathways, weights)

    def _nudged(self, drive, d, beta):
        """Drive, nudge and decay of a phase nudged at ``beta`` (batch,) toward ``d``."""
        out = self.rows[self.net.output.name]
        nudge = torch.zeros_like(drive)
        nudge[out] = self.h * d.T * beta[None, :]
        decay = drive.new_full(drive.shape, 1.0 - self.h)
        decay[out] = (1.0 - self.h - self.h * beta)[None, :]
        if self.hard:
            return drive + nudge, None, decay
        return drive, nudge, decay

    @property
    def _free_window(self):
        """The free phase's step at which a count window opens (None: no counts)."""
        rel = self.relaxation
        return rel.free_steps - rel.nudged_steps if self.spikes.counts else None

    def _next_phase(self, st: SpikingState) -> None:
        """A read window closes with its phase and the next one opens; a membrane in
        ``reset`` mode starts the phase at 0."""
        if st.count is not None:
            st.count.zero_()
        if self.resets_membrane:
            st.membrane.zero_()

    def _by_population(self, values) -> dict:
        """``(N, batch)`` over all dynamic units -> ``{population: (batch, N_pop)}``."""
        return {name: values[rows].T for name, rows in self.rows.items()}

    def run(self, x, d, W, b, signs, recorder=None):
        """Every phase of the estimator for a batch (phase rule).

        Parameters
        ----------
        x : (batch, N_in) tensor; d : (batch, N_out) one-hot
        W, b : dicts of tensors
        signs : (batch,) tensor, the sign of β in the first nudged phase
        recorder : callable ``(state, spikes)``, optional, called after steps 1–3 of
            every step

        Returns
        -------
        rates_a, rates_b : dict of (batch, N) tensors
            What the rule compares (:class:`~cortex_ep.model.estimators.Estimator`),
            the input's ``ρ(x)`` included.
        free_output : (batch, N_out) tensor, ``s`` at the free phase's end
        """
        rel = self.relaxation
        st = self._zero_state(len(x), x)
        drive, couplings = self.h * self._drive(x, W, b), self._couplings(W)
        found = {}

        def free_end(state):
            found["saved"] = state.copy(self.restarted)
            found["b"] = self._read(state)
            found["free"] = state.s[self.rows[self.net.output.name]].T.clone()
            self._next_phase(state)

        def nudged_end(state):
            found["a"] = self._read(state)
            state.restore(found["saved"])
            self._next_phase(state)

        def negative_end(state):
            found["b"] = self._read(state)

        self._phase(st, rel.free_steps, couplings, drive, at_end=free_end,
                    window_at=self._free_window, recorder=recorder)
        beta = self.estimator.beta * signs
        self._phase(st, rel.nudged_steps, couplings, *self._nudged(drive, d, beta),
                    at_end=nudged_end, recorder=recorder)
        if self.estimator.name == "symmetric":
            self._phase(st, rel.nudged_steps, couplings, *self._nudged(drive, d, -beta),
                        at_end=negative_end, recorder=recorder)
        rates_a, rates_b = self._by_population(found["a"]), self._by_population(found["b"])
        rates_a[self.net.input.name] = rates_b[self.net.input.name] = self.activation.rho(x)
        return rates_a, rates_b, found["free"]

    def free_output(self, x, W, b):
        """``s`` of the output at the free phase's end, ``(batch, N_out)``."""
        st = self._zero_state(len(x), x)
        self._phase(st, self.relaxation.free_steps, self._couplings(W),
                    self.h * self._drive(x, W, b), window_at=self._free_window)
        return st.s[self.rows[self.net.output.name]].T.clone()

    def record(self, x, d, W, b, signs) -> dict:
        """``s`` after every step and every spike, without learning, as the Brian2 engine
        records them: population -> (n, steps_per_sample, N) array, and
        ``("spikes", population)`` -> (n_spikes, 3) integer array of (sample, step, unit)."""
        states, fired = [], []

        def recorder(st, spikes):
            states.append(st.s.T.cpu().numpy().astype(np.float64))
            fired.append(spikes.T.cpu().numpy() > 0)

        self.run(x, d, W, b, signs, recorder=recorder)
        states, fired = np.stack(states, axis=1), np.stack(fired, axis=1)
        out = {}
        for name, rows in self.rows.items():
            out[name] = states[:, :, rows]
            sample, step, unit = np.nonzero(fired[:, :, rows])
            out[("spikes", name)] = np.stack([sample, step, unit], axis=1).astype(np.int64)
        return out
