"""EP training in the torch twin: same spec, equations and estimators as Brian2."""

from __future__ import annotations

import numpy as np
import torch

from ...model import energy
from ...model.dynamics import record_phases, zero_state
from ...model.estimators import Estimator, ep_update
from ...model.neurons import Spiking
from ...model.plasticity import Plasticity, continual_batches, decay_weights
from ...model.relaxation import Relaxation
from ...model.spec import Network
from .fast import relax
from .relax import resolve_device, resolve_dtype, to_numpy, to_tensors
from .spiking import SpikingNetwork
from .threads import cpu_threads


class TorchEngine:
    """Batched EP on a torch device.

    Parameters
    ----------
    net, estimator, relaxation
        As for every engine.
    device : str
        ``cpu``, ``cuda`` or ``cuda:N``.
    dtype : {"float32", "float64"}
    seed : int
        Seeds the noise generator.
    plasticity : Plasticity
        ``continual`` runs the samples one after the other (weights change
        within each sample); ``phase`` runs each minibatch at once.
    spikes : Spiking, optional
        Spiking neurons (:mod:`cortex_ep.model.neurons`, the phase rule), simulated
        by :mod:`cortex_ep.engines.twin.spiking` at their ``dt`` and phase
        lengths.  None: rate neurons.
    """

    def __init__(self, net: Network, estimator: Estimator, relaxation: Relaxation,
                 device: str = "cpu", dtype: str = "float32", seed: int = 0,
                 plasticity: Plasticity = Plasticity(), spikes: Spiking | None = None):
        if spikes is not None:
            if plasticity.continual:
                raise ValueError("spiking units in the torch twin learn by the phase rule; "
                                 "the continual rule with spikes runs in the Brian2 engine")
            net, relaxation = spikes.timed(net, relaxation)
        self.net, self.estimator, self.relaxation = net, estimator, relaxation
        self.plasticity, self.spikes = plasticity, spikes
        self.device, self.dtype = resolve_device(device), resolve_dtype(dtype)
        self.generator = torch.Generator(device=self.device).manual_seed(seed)
        self.spiking = (SpikingNetwork(net, spikes, estimator, relaxation, self.generator)
                        if spikes is not None else None)
        self.lr = energy.weight_learning_rates(net)
        self.lr_bias = {pop.name: net.bias_lr(pop.name) for pop in net.dynamic}

    def get_state(self) -> dict:
        """The noise generator's state (JSON-able)."""
        return {"generator": self.generator.get_state().tolist()}

    def set_state(self, state: dict) -> None:
        if state:
            self.generator.set_state(torch.tensor(state["generator"], dtype=torch.uint8))

    def tensor(self, a) -> torch.Tensor:
        return torch.as_tensor(np.asarray(a), device=self.device, dtype=self.dtype)

    def _noise(self, like):
        return torch.randn(like.shape, generator=self.generator, device=like.device,
                           dtype=like.dtype)

    # ------------------------------------------------------------- phases
    def phases(self, x, d, W, b, signs) -> dict:
        """States at the end of every phase of the estimator for a batch (tensors)."""
        net, rel, est = self.net, self.relaxation, self.estimator
        kw = dict(activation=rel.activation, noise=rel.noise, rng=self._noise)
        fixed = energy.input_currents(net, x, W, rel.activation)
        s0 = relax(net, zero_state(net, x), W, b, rel.free_steps, fixed=fixed, **kw)
        beta = est.beta * signs
        out = {"free": s0,
               "nudged": relax(net, s0, W, b, rel.nudged_steps, d, beta, fixed=fixed, **kw)}
        if est.name == "symmetric":
            out["nudged_neg"] = relax(net, s0, W, b, rel.nudged_steps, d, -beta, fixed=fixed,
                                      **kw)
        return out

    def compare(self, x, d, W, b, signs):
        """What the rule compares for a batch, and the free phase's output.

        Returns ``(rates_a, rates_b, free_output)``: dicts of ``(batch, N)`` tensors
        (the input's ``ρ(x)`` included) and a ``(batch, N_out)`` tensor.
        """
        if self.spiking is not None:
            return self.spiking.run(x, d, W, b, signs)
        states = self.phases(x, d, W, b, signs)
        return (*self.estimator.compared_rates(states, self.relaxation.activation),
                states["free"][self.net.output.name])

    # ---------------------------------------------------- engine protocol
    def epoch(self, W, b, x_train, d_train, signs, batch_size, x_test):
        """One epoch, on CPU with the thread policy of :mod:`cortex_ep.engines.twin.threads`."""
        with cpu_threads(batch_size, self.device):
            return self._epoch(W, b, x_train, d_train, signs, batch_size, x_test)

    @torch.no_grad()
    def _epoch(self, W, b, x_train, d_train, signs, batch_size, x_test):
        W, b = to_tensors(W, self.device, self.dtype), to_tensors(b, self.device, self.dtype)
        x_all, d_all, sign_all = (self.tensor(x_train), self.tensor(d_train),
                                  self.tensor(signs))
        if self.plasticity.continual:
            return self._continual_epoch(W, b, x_all, d_all, signs, batch_size, x_test)
        factor_all = self.tensor(self.estimator.factors(np.asarray(signs, float)))
        outputs = []
        for start in range(0, len(x_all), batch_size):
            sl = slice(start, start + batch_size)
            rates_a, rates_b, free = self.compare(x_all[sl], d_all[sl], W, b, sign_all[sl])
            dW, db = ep_update(self.net, rates_a, rates_b, factor_all[sl])
            for name, g in dW.items():
                W[name].add_(g, alpha=self.lr[name])
            for name, g in db.items():
                b[name].add_(g, alpha=self.lr_bias[name])
            decay_weights(self.net, W)
            outputs.append(free)
        test_out = self.predict(W, b, x_test)
        return (to_numpy(W), to_numpy(b), torch.cat(outputs).cpu().numpy(),
                test_out.cpu().numpy())

    def _continual_epoch(self, W, b, x_all, d_all, signs, batch_size, x_test):
        rel = self.relaxation

        def free_phase(s, fixed):
            return relax(self.net, s, W, b, rel.free_steps, activation=rel.activation,
                         noise=rel.noise, rng=self._noise, fixed=fixed)

        threads = torch.get_num_threads()
        # one sample at a time: operations this small only lose time to a second thread
        torch.set_num_threads(1)
        try:
            outputs = continual_batches(self.net, x_all, d_all, W, b, self.estimator,
                                        np.asarray(signs, float), batch_size,
                                        rel.nudged_steps, free_phase, rel.activation,
                                        rel.noise, self._noise)
        finally:
            torch.set_num_threads(threads)
        test_out = self.predict(W, b, x_test)
        return (to_numpy(W), to_numpy(b), torch.cat(outputs).cpu().numpy(),
                test_out.cpu().numpy())

    @torch.no_grad()
    def predict(self, W, b, x, batch_size: int = 1000) -> torch.Tensor:
        """Free-phase output for inputs ``x`` (n, N_in) -> (n, N_out)."""
        rel, net = self.relaxation, self.net
        x = self.tensor(x)
        if self.spiking is not None:
            outs = [self.spiking.free_output(x[i:i + batch_size], W, b)
                    for i in range(0, len(x), batch_size)]
        else:
            outs = [relax(net, zero_state(net, x[i:i + batch_size]), W, b, rel.free_steps,
                          activation=rel.activation, noise=rel.noise,
                          rng=self._noise)[net.output.name]
                    for i in range(0, len(x), batch_size)]
        return torch.cat(outs) if outs else x.new_zeros((0, net.output.size))

    @torch.no_grad()
    def record(self, W, b, x, d, signs):
        """States after every Euler step, phases back to back: population -> (n, S, N)."""
        rel = self.relaxation
        W, b = to_tensors(W, self.device, self.dtype), to_tensors(b, self.device, self.dtype)
        if self.spiking is not None:
            return self.spiking.record(self.tensor(x), self.tensor(d), W, b, self.tensor(signs))
        trace = record_phases(self.net, self.tensor(x), self.tensor(d), W, b, rel.free_steps,
                              rel.nudged_steps, self.estimator.beta * self.tensor(signs),
                              self.estimator.name == "symmetric", rel.activation, rel.noise,
                              self._noise, self.plasticity.continual)
        return {k: torch.stack(v, 1).cpu().numpy() for k, v in trace.items()}
