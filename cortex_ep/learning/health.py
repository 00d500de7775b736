"""Divergence and non-convergence checks, run after every training epoch.

Engines run a fixed number of Euler steps per phase; nothing inside them
notices when the weights have blown up or when the free phase no longer
settles in the steps it is given.  :func:`check_epoch` looks, engine-agnostic,
at what an epoch produced:

- non-finite or exploding weights and biases (which projection / population);
- non-finite outputs;
- the free phase of a probe batch, relaxed with the numpy reference: a state
  that turns non-finite (at which Euler step, in which population), or one
  that has not settled — max |ds/dt|·τ above ``tol`` at the last free step —
  told apart into an Euler map that oscillates (dt too large for τ) and a
  relaxation that is merely too short (too few free steps).

The probe is relaxed without noise: with noise the state never settles, and
what matters is whether the deterministic flow does.  The checks look only at
the flow (its residual and its step-to-step changes), never at an energy or
its Hessian, so they hold for networks with separate feedback too, whose
dynamics are a vector field without an energy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..model import energy
from ..model.dynamics import zero_state

#: |weight| above this is treated as exploding (the units' states live in [0, 1])
EXPLODING_WEIGHT = 1e4
#: default tolerance on max |ds/dt|·τ at the end of the free phase: a unit still
#: moving by 5 % of its range per step (at dt/τ = 0.5) has not settled.  The
#: default model ends its 20 free steps near 5e-3 after training, 20× below.
SETTLE_TOL = 0.1
ACTIONS = ("stop", "warn")


class DivergenceError(RuntimeError):
    """Training diverged or stopped converging; the message names where and why."""


@dataclass(frozen=True)
class Problem:
    """What went wrong after an epoch, in words a user can act on."""

    epoch: int
    where: str
    message: str

    def __str__(self) -> str:
        return f"epoch {self.epoch}: {self.message}"


def check_epoch(net, W: dict, b: dict, outputs, epoch: int, probe_x, free_steps: int,
                activation: str, lrs: str, beta: float, tol: float = SETTLE_TOL):
    """The first problem with an epoch's result, or ``None``.

    Parameters
    ----------
    W, b : the parameters after the epoch
    outputs : sequence of arrays, the epoch's free-phase outputs
    probe_x : (n, N_in) array, a few held-out inputs relaxed to test settling;
        ``None`` for networks without dynamics (feedforward backprop)
    lrs : str, the learning rates, quoted in messages
    beta : float, the nudging strength, quoted in messages
    """
    cause = (f"the learning rate ({lrs}) or β ({beta:g}) is likely too large: lower "
             "--lr (or --beta) and resume from the last good epoch")
    for proj in net.projections:
        problem = _bad_values(W[proj.name], f"weights of projection {proj.pre}->{proj.post}",
                              epoch, cause)
        if proj.separate and not problem:
            problem = _bad_values(W[energy.feedback_name(proj.name)],
                                  f"feedback weights of projection {proj.pre}->{proj.post}",
                                  epoch, cause)
        if problem:
            return problem
    for pop in net.dynamic:
        problem = _bad_values(b[pop.name], f"biases of population {pop.name}", epoch, cause)
        if problem:
            return problem
        lateral = W.get(energy.lateral_name(pop.name))
        if lateral is not None:
            problem = _bad_values(lateral, f"lateral weights of population {pop.name}",
                                  epoch, cause)
            if problem:
                return problem
    for out in outputs:
        if not np.all(np.isfinite(out)):
            return Problem(epoch, net.output.name,
                           f"the output population {net.output.name} produced non-finite "
                           f"states during the epoch; {cause}")
    if probe_x is None:
        return None
    return check_settling(net, W, b, probe_x, free_steps, activation, epoch, tol)


def _bad_values(values, what: str, epoch: int, cause: str):
    values = np.asarray(values)
    if not np.all(np.isfinite(values)):
        count = int(np.size(values) - np.isfinite(values).sum())
        return Problem(epoch, what, f"{count} {what} became NaN or infinite; {cause}")
    peak = float(np.abs(values).max()) if values.size else 0.0
    if peak > EXPLODING_WEIGHT:
        return Problem(epoch, what, f"{what} are exploding (max |w| = {peak:.3g} > "
                                    f"{EXPLODING_WEIGHT:g}); {cause}")
    return None


def check_settling(net, W, b, x, free_steps: int, activation: str, epoch: int = 0,
                   tol: float = SETTLE_TOL):
    """Relax ``x`` for ``free_steps`` steps; a :class:`Problem` if it fails to settle."""
    h = net.dt / net.tau
    s = zero_state(net, np.asarray(x, float))
    fixed = energy.input_currents(net, s[net.input.name], W, activation)
    previous_delta = None
    for step in range(1, free_steps + 1):
        new = energy.euler_step(net, s, W, b, activation=activation, fixed=fixed)
        for pop in net.dynamic:
            if not np.all(np.isfinite(new[pop.name])):
                return Problem(epoch, pop.name,
                               f"the free phase of population {pop.name} became non-finite "
                               f"at Euler step {step}: the weights drive it out of range; "
                               "lower the learning rate (--lr) and resume")
        delta = {p.name: new[p.name] - s[p.name] for p in net.dynamic}
        s = new
        if step < free_steps:
            previous_delta = delta
    residual = {name: float(np.abs(d).max()) / h for name, d in delta.items()}
    worst = max(residual, key=residual.get)
    if residual[worst] <= tol:
        return None
    oscillating = previous_delta is not None and bool(
        np.mean(np.sign(delta[worst]) * np.sign(previous_delta[worst]) < 0) > 0.25)
    if oscillating:
        cause = (f"the Euler map oscillates: dt = {net.dt:g} ms is too large for "
                 f"tau = {net.tau:g} ms with these weights; choose a smaller dt")
    else:
        cause = (f"the free phase is too short: raise --free-steps (now {free_steps}; "
                 f"with --neurons spiking --free-ms, now {free_steps * net.dt:g} ms) or "
                 f"lower the learning rate")
    return Problem(epoch, worst,
                   f"the free phase has not settled: population {worst} has max "
                   f"|ds/dt|·τ = {residual[worst]:.3g} > {tol:g} at Euler step {free_steps} "
                   f"(the last free step); {cause}")
