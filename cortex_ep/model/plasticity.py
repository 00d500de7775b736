"""Plasticity rules: when, and from what, a synapse changes.

``phase`` (the default)
    Every synapse changes once per sample, at the end of the nudged phase,
    from the rates at the ends of two phases (:mod:`cortex_ep.model.estimators`).  The
    rates of the first phase must be stored until then: the rule is local in
    space, not in time.
``continual`` (C-EP)
    After Ernoult et al. 2020, "Equilibrium Propagation with Continual Weight
    Updates".  At every Euler step ``t → t+1`` of the learning phase each synapse changes
    by the step's change of its pre × post rate product, and each bias by the
    change of its rate::

        ΔW = lr · factor · (ρ_pre^{t+1} ρ_post^{t+1} − ρ_pre^t ρ_post^t)
        Δb = lr · factor · (ρ^{t+1} − ρ^t)

    with the estimator's factor (1/β, 1/(±β), 1/(2β)).  The currents of the
    next step use the changed weights.  A synapse needs only its rates one
    step ago (a one-step trace); nothing is kept from the free phase.  Summed
    over the phase with ``lr → 0`` the updates telescope to the phase rule.

Batches.  Samples are simulated one after the other, as the Brian2 engine has
always done and as a cortex sees them; under ``continual`` a sample's steps
change the weights at ``lr / B`` (B: the size of its minibatch), so the
change over a batch is the batch average of per-sample updates to first order
in ``lr``, and a later sample of the batch already sees the changes made by
the earlier ones.  (The C-EP paper instead runs a batch in parallel on shared
weights that change by the batch-averaged step; we keep the one definition
that every engine can run, Brian2 included.)

Kolen–Pollack feedback (:class:`~cortex_ep.model.spec.Projection`,
``feedback_learning``).  Under either rule, at the end of every minibatch and
after its updates, ``W`` and ``B`` of such a projection are multiplied by
``1 − lr · λ`` (:func:`decay_weights`); ``B − W``, which both rules change
alike, shrinks by that factor per batch.

Symmetric estimator.  The C-EP paper nudges one-sidedly.  Restarting the −β
phase from the free fixed point, as the phase rule does, would need that
state stored, so under ``continual`` the network goes free → −β (no
learning) → +β (learning at factor 1/(2β)): the updates then telescope to
``(ρρ(s^{+β}) − ρρ(s^{−β}))/(2β)``, the symmetric estimate.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import dynamics, energy
from .estimators import Estimator, ep_update

RULES = ("phase", "continual")
#: sign of β in each nudged phase, relative to the sample's sign
BETA_SIGN = {"nudged": 1.0, "nudged_neg": -1.0}


@dataclass(frozen=True)
class Plasticity:
    """A plasticity rule (``phase`` or ``continual``, see the module docstring)."""

    rule: str = "phase"

    def __post_init__(self):
        if self.rule not in RULES:
            raise ValueError(f"unknown plasticity rule {self.rule!r}; choose one of "
                             f"{', '.join(RULES)}")

    @property
    def continual(self) -> bool:
        return self.rule == "continual"

    def phases(self, estimator: Estimator) -> tuple[str, ...]:
        """The estimator's phases in the order they are simulated."""
        if self.continual and estimator.name == "symmetric":
            return ("free", "nudged_neg", "nudged")
        return estimator.phases


def continual_sample(net, x, d, W: dict, b: dict, estimator: Estimator, sign: float,
                     scale: float, nudged_steps: int, free_phase, activation="hard_sigmoid",
                     noise: float = 0.0, rng=None):
    """One sample under the continual rule; ``W`` and ``b`` change in place.

    Parameters
    ----------
    x : (1, N_in) array or tensor; d : (1, N_out) one-hot
    sign : float
        Sign of β for this sample (random-sign draws it; otherwise 1).
    scale : float
        Multiplies every step's update: ``1 / batch size``.
    free_phase : callable
        ``free_phase(state, fixed) -> state``: relaxes the free phase (a fixed
        number of steps in training, to a tolerance in the gradient check).
    nudged_steps : int
        Euler steps of each nudged phase.

    Returns
    -------
    The free-phase output state, shape ``(1, N_out)``.
    """
    act = energy.get_activation(activation)
    beta = estimator.beta * float(sign)
    # the factor as an array of x's own type (numpy or torch), shape (1,)
    factor = x[:, 0] * 0 + float(estimator.factors(np.array([sign]))[0]) * scale
    lrs = energy.weight_learning_rates(net)
    bias_lrs = {pop.name: net.bias_lr(pop.name) for pop in net.dynamic}
    fixed = energy.input_currents(net, x, W, activation)
    s = free_phase(dynamics.zero_state(net, x), fixed)
    free_output = s[net.output.name]
    if estimator.name == "symmetric":
        s = dynamics.relax(net, s, W, b, nudged_steps, d, -beta, activation, noise, rng, fixed)
    rates = {k: act.rho(v) for k, v in s.items()}
    for _ in range(nudged_steps):
        s = energy.euler_step(net, s, W, b, d, beta, activation, noise, rng, fixed)
        new_rates = {k: act.rho(v) for k, v in s.items()}
        dW, db = ep_update(net, new_rates, rates, factor)
        for name, lr in lrs.items():
            _add_scaled(W[name], dW[name], lr)
        for name, lr in bias_lrs.items():
            _add_scaled(b[name], db[name], lr)
        # the input synapses changed too: the clamped input's current follows them
        fixed = energy.input_currents(net, x, W, activation)
        rates = new_rates
    return free_output


def _add_scaled(target, update, alpha: float) -> None:
    """``target += alpha · update`` in place, without a temporary for tensors."""
    if hasattr(target, "add_"):
        target.add_(update, alpha=alpha)
    else:
        target += alpha * update


def decay_weights(net, W: dict) -> None:
    """The end of a minibatch: the Kolen–Pollack decay of ``W`` in place (numpy
    arrays or tensors)."""
    for name, factor in energy.weight_decay_factors(net).items():
        if hasattr(W[name], "mul_"):
            W[name].mul_(factor)
        else:
            W[name] *= factor


def continual_batches(net, x, d, W: dict, b: dict, estimator: Estimator, signs,
                      batch_size: int, nudged_steps: int, free_phase,
                      activation="hard_sigmoid", noise: float = 0.0, rng=None) -> list:
    """Every sample of ``x`` (n, N_in) in order under the continual rule, in minibatches
    of ``batch_size`` (each sample's steps scaled by 1 / its batch's size).

    Returns the free-phase outputs, a list of ``(1, N_out)`` arrays or tensors.
    """
    n, outputs = len(x), []
    for start in range(0, n, batch_size):
        size = min(batch_size, n - start)
        for i in range(start, start + size):
            outputs.append(continual_sample(
                net, x[i:i + 1], d[i:i + 1], W, b, estimator, float(signs[i]), 1.0 / size,
                nudged_steps, free_phase, activation, noise, rng))
        decay_weights(net, W)
    return outputs
