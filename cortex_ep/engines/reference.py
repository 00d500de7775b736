"""Plain batched numpy implementation of EP training (the reference engine).

It integrates exactly the equations of :mod:`cortex_ep.model.energy` and applies the
estimators of :mod:`cortex_ep.model.estimators`.  The Brian2 engine is checked
against it and the benchmark compares their speed.
"""

from __future__ import annotations

import numpy as np

from ..model import dynamics, energy
from ..model.dynamics import zero_state
from ..model.estimators import Estimator, ep_update
from ..model.plasticity import Plasticity, continual_batches, decay_weights
from ..model.relaxation import Relaxation
from ..model.spec import Network


def relax(net, s, W, b, steps, target=None, beta=0.0, relaxation=Relaxation(), rng=None):
    """Integrate ``steps`` projected Euler steps from state ``s``; returns the new state."""
    return dynamics.relax(net, s, W, b, steps, target, beta, relaxation.activation,
                          relaxation.noise, rng)


def ep_phases(net, x, target, W, b, estimator: Estimator, relaxation: Relaxation,
              signs=None, rng=None):
    """Run the phases of one batch.

    Returns
    -------
    states : dict phase -> state dict at the end of that phase
    signs : (batch,) array of the first nudged phase's β sign
    """
    if signs is None:
        signs = estimator.signs(x.shape[0], rng if rng is not None else np.random.default_rng())
    s0 = relax(net, zero_state(net, x), W, b, relaxation.free_steps, relaxation=relaxation,
               rng=rng)
    states = {"free": s0}
    beta = estimator.beta * np.asarray(signs, dtype=float)
    states["nudged"] = relax(net, s0, W, b, relaxation.nudged_steps, target, beta,
                             relaxation, rng)
    if estimator.name == "symmetric":
        states["nudged_neg"] = relax(net, s0, W, b, relaxation.nudged_steps, target, -beta,
                                     relaxation, rng)
    return states, signs


def ep_gradient(net, states, signs, estimator: Estimator, activation="hard_sigmoid"):
    """The estimator's descent direction from the phase states of :func:`ep_phases`."""
    return ep_update(net, *estimator.compared_rates(states, activation),
                     estimator.factors(signs))


def train_batch(net, x, target, W, b, estimator, relaxation, signs=None, rng=None):
    """One EP step on a batch: updates ``W`` and ``b`` in place.

    Returns the free-phase output state (batch, N_out).
    """
    states, signs = ep_phases(net, x, target, W, b, estimator, relaxation, signs, rng)
    dW, db = ep_gradient(net, states, signs, estimator, relaxation.activation)
    for name, lr in energy.weight_learning_rates(net).items():
        W[name] += lr * dW[name]
    for pop in net.dynamic:
        b[pop.name] += net.bias_lr(pop.name) * db[pop.name]
    decay_weights(net, W)
    return states["free"][net.output.name]


def predict(net, x, W, b, relaxation: Relaxation, rng=None):
    """Free-phase output state for inputs ``x`` (batch, N_in) -> (batch, N_out)."""
    return relax(net, zero_state(net, x), W, b, relaxation.free_steps,
                 relaxation=relaxation, rng=rng)[net.output.name]


class ReferenceEngine:
    """The numpy reference behind the same protocol as the Brian2 engine."""

    def __init__(self, net: Network, estimator: Estimator, relaxation: Relaxation,
                 seed: int = 0, plasticity: Plasticity = Plasticity()):
        self.net, self.estimator, self.relaxation = net, estimator, relaxation
        self.plasticity = plasticity
        self.rng = np.random.default_rng(seed)

    def epoch(self, W, b, x_train, d_train, signs, batch_size, x_test):
        W = {k: v.copy() for k, v in W.items()}
        b = {k: v.copy() for k, v in b.items()}
        rel = self.relaxation
        rng = self.rng if rel.noise else None
        if self.plasticity.continual:
            def free_phase(s, fixed):
                return dynamics.relax(self.net, s, W, b, rel.free_steps,
                                      activation=rel.activation, noise=rel.noise, rng=rng,
                                      fixed=fixed)

            train_out = np.concatenate(continual_batches(
                self.net, x_train, d_train, W, b, self.estimator, signs, batch_size,
                rel.nudged_steps, free_phase, rel.activation, rel.noise, rng))
        else:
            train_out = np.concatenate([
                train_batch(self.net, x_train[i:i + batch_size], d_train[i:i + batch_size],
                            W, b, self.estimator, rel, signs[i:i + batch_size], rng)
                for i in range(0, len(x_train), batch_size)])
        test_out = predict(self.net, x_test, W, b, rel, rng)
        return W, b, train_out, test_out

    def get_state(self) -> dict:
        return self.rng.bit_generator.state

    def set_state(self, state: dict) -> None:
        self.rng.bit_generator.state = state

    def record(self, W, b, x, d, signs):
        """States after every Euler step, phases back to back: population -> (n, S, N)."""
        rel = self.relaxation
        trace = dynamics.record_phases(
            self.net, x, d, W, b, rel.free_steps, rel.nudged_steps,
            self.estimator.beta * np.asarray(signs, float), self.estimator.name == "symmetric",
            rel.activation, rel.noise, self.rng if rel.noise else None,
            self.plasticity.continual)
        return {name: np.stack(v, axis=1) for name, v in trace.items()}
