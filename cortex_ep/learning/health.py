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
  relaxation that is merely too short (too few free steps);
- dead units: an output unit pinned at 0 (silent) or at 1 (saturated) for
  (nearly) every held-out digit, out of the nudge's reach, whose class EP no
  longer learns — both phases leave it at its bound, so its update is zero —
  and a hidden population more than half of whose units never leave 0 on the
  probe.  They are read from the
  held-out outputs the epoch computed and from the probe's relaxation above,
  at no extra cost.

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
                activation: str, lrs: str, beta: float, tol: float = SETTLE_TOL,
                held_out=None, watch: DeadUnitWatch | None = None):
    """The first problem with an epoch's result, or ``None``.

    Parameters
    ----------
    W, b : the parameters after the epoch
    outputs : sequence of arrays, the epoch's free-phase outputs
    probe_x : (n, N_in) array, a few held-out inputs relaxed to test settling;
        ``None`` for networks without dynamics (feedforward backprop)
    lrs : str, the learning rates, quoted in messages
    beta : float, the nudging strength, quoted in messages
    held_out : (n_test, N_out) array, optional
        The free-phase output states of the held-out digits; with it (and a
        probe), dead output and hidden units are looked for too.
    watch : :class:`DeadUnitWatch`, optional
        Kept across the epochs of a run: dead units are reported once they were
        dead after the previous epoch too.
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
    problem, probe = _settle(net, W, b, probe_x, free_steps, activation, epoch, tol)
    if problem is not None or held_out is None:
        return problem
    return check_dead_units(net, W, b, held_out, probe, epoch, lrs, beta, activation, watch)


#: a hidden population is reported when more than this fraction of its units
#: never leave 0 on the probe
SILENT_HIDDEN_FRACTION = 0.5


#: an output unit on its bound for at least this fraction of the held-out digits is
#: pinned there (a unit alive for 1 digit in 500 still loses its class)
PINNED_FRACTION = 0.99
#: ... and dead when the nudge cannot move it off on at least this fraction of the
#: probe digits (a few digits it can still lift teach it too little to come back)
OUT_OF_REACH_FRACTION = 0.9


def dead_outputs(states, fraction: float = PINNED_FRACTION) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the output units at 0 (silent) and at 1 (saturated) for at least
    ``fraction`` of the rows of ``states`` (n_digits, N_out): the states are clipped to
    [0, 1], so a unit pinned at a bound sits on it exactly."""
    states = np.asarray(states)
    return (np.flatnonzero((states <= 0.0).mean(axis=0) >= fraction),
            np.flatnonzero((states >= 1.0).mean(axis=0) >= fraction))


def unmovable(net, W, b, probe, units, bound: int, beta: float, activation: str):
    """Those of ``units`` (on ``bound`` 0 or 1) that a nudge of strength ``|beta|``
    toward the other bound cannot move off it on at least
    :data:`OUT_OF_REACH_FRACTION` of the ``probe`` digits (free-phase states)."""
    if len(units) == 0:
        return units
    y = net.output.name
    target = np.full_like(np.asarray(probe[y], dtype=float), 1.0 - bound)
    grad = energy.neg_gradient(net, probe, W, b, target, abs(beta), activation)[y][:, units]
    outward = grad <= 0.0 if bound == 0 else grad >= 0.0
    return units[outward.mean(axis=0) >= OUT_OF_REACH_FRACTION]


def _units(indices) -> str:
    shown = ", ".join(str(int(i)) for i in indices[:12])
    return shown + (f" and {len(indices) - 12} more" if len(indices) > 12 else "")


class DeadUnitWatch:
    """What was dead after the previous epoch, for :func:`check_dead_units`.

    The hidden layer's drift revives some units a single epoch left dead (seen
    at β = 0.1, at the small-β rates, after epoch 1); a unit still dead after the
    next epoch is reported.
    """

    def __init__(self):
        self.last: set = set()

    def confirmed(self, found: set) -> set:
        """Those of ``found`` that were dead last time too; ``found`` is kept."""
        confirmed, self.last = found & self.last, set(found)
        return confirmed


def check_dead_units(net, W: dict, b: dict, held_out, probe: dict, epoch: int, lrs: str,
                     beta: float, activation: str = "hard_sigmoid", watch=None):
    """A :class:`Problem` naming dead output units (by unit and class) or a hidden
    population mostly silent on the probe, with the likely fixes; else ``None``.

    An output unit is dead when it sits on a bound for (nearly, :data:`PINNED_FRACTION`)
    every held-out digit *and* the nudge cannot move it off: on most probe digits
    (:data:`OUT_OF_REACH_FRACTION`), the nudged phase's first step toward the
    other bound (target 1 for a silent unit, 0 for a saturated one, strength
    ``|β|``) still points out of [0, 1].  A unit at 0 that the nudge can lift is
    not dead: its class's digits still teach it.

    Parameters
    ----------
    held_out : (n_test, N_out) array, the held-out digits' free-phase output states
        (output unit ``k`` stands for class ``k``)
    probe : dict of (n_probe, N) arrays, the probe's free-phase states (input included)
    watch : :class:`DeadUnitWatch`, optional
        Report only what was dead after the previous epoch too (training keeps one);
        without it, everything dead now is reported.
    """
    y = net.output.name
    silent, saturated = dead_outputs(held_out)
    found = {(0, int(u)) for u in unmovable(net, W, b, probe, silent, 0, beta, activation)}
    found |= {(1, int(u)) for u in unmovable(net, W, b, probe, saturated, 1, beta,
                                               activation)}
    found |= {(pop.name, None) for pop in net.dynamic if pop.role == "hidden"
              and np.sum((np.asarray(probe[pop.name]) <= 0.0).all(axis=0))
              > SILENT_HIDDEN_FRACTION * pop.size}
    report = watch.confirmed(found) if watch is not None else found
    n = len(held_out)
    for bound, how, cause in (
            (0, "silent",
             f"the nudge β(d − s), at most {abs(beta):g}, cannot lift {{them}}: "
             "{their} drive is more negative on nearly every probe digit"),
            (1, "saturated",
             f"the nudge, at most {abs(beta):g}, cannot pull {{them}} down: {{their}} "
             "drive is larger on nearly every probe digit")):
        units = np.array(sorted(u for kind, u in report if kind == bound), dtype=int)
        if len(units) == 0:
            continue
        one = len(units) == 1
        them, their = ("it", "its") if one else ("them", "their")
        pinned = int(((np.asarray(held_out)[:, units] == bound).all(axis=1)).sum())
        digits = f"all {n}" if pinned == n else f"{pinned} of the {n}"
        if watch is not None:
            digits += " held-out digits, after this epoch and the one before,"
        else:
            digits += " held-out digits"
        return Problem(epoch, y,
                       f"output unit{'' if one else 's'} {_units(units)} of population {y} "
                       f"(class{'' if one else 'es'} {_units(units)}) "
                       f"{'is' if one else 'are'} {how} (state {bound}) for {digits} "
                       f"and {cause.format(them=them, their=their)}, so both phases "
                       f"leave {them} there and EP's update for {them} is zero: only a "
                       f"drift of the hidden layer can bring {them} back, and the digits of "
                       f"{'this class' if one else 'these classes'} are lost until then. "
                       f"Likely fixes: smaller learning rates (now {lrs}; the model's rates "
                       "for small β when --lr is left out), a larger β or a smaller batch; "
                       "start the run again with one of them")
    for pop in net.dynamic:
        if (pop.name, None) not in report:
            continue
        never = np.flatnonzero((np.asarray(probe[pop.name]) <= 0.0).all(axis=0))
        return Problem(epoch, pop.name,
                       f"{len(never)} of the {pop.size} units of hidden population "
                       f"{pop.name} ({100 * len(never) / pop.size:.0f}%) never leave 0 on "
                       f"the {len(probe[pop.name])} probe digits (units {_units(never)})"
                       f"{' after this epoch and the one before' if watch is not None else ''}: "
                       "they pass nothing on and EP's update cannot revive them. Likely "
                       f"fixes: smaller learning rates (now {lrs}) or a larger β; start the "
                       "run again with one of them")
    return None


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
    return _settle(net, W, b, x, free_steps, activation, epoch, tol)[0]


def _settle(net, W, b, x, free_steps: int, activation: str, epoch: int, tol: float):
    """(the settling problem or None, the free-phase states reached)."""
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
                               "lower the learning rate (--lr) and resume"), new
        delta = {p.name: new[p.name] - s[p.name] for p in net.dynamic}
        s = new
        if step < free_steps:
            previous_delta = delta
    residual = {name: float(np.abs(d).max()) / h for name, d in delta.items()}
    worst = max(residual, key=residual.get)
    if residual[worst] <= tol:
        return None, s
    oscillating = previous_delta is not None and bool(
        np.mean(np.sign(delta[worst]) * np.sign(previous_delta[worst]) < 0) > 0.25)
    if oscillating:
        cause = (f"the Euler map oscillates: dt = {net.dt:g} ms is too large for "
                 f"tau = {net.tau:g} ms with these weights; choose a smaller dt")
    else:
        cause = (f"the free phase is too short: raise --free-steps (now {free_steps}; "
                 f"with spiking --neurons, --free-ms, now {free_steps * net.dt:g} ms) or "
                 f"lower the learning rate")
    return Problem(epoch, worst,
                   f"the free phase has not settled: population {worst} has max "
                   f"|ds/dt|·τ = {residual[worst]:.3g} > {tol:g} at Euler step {free_steps} "
                   f"(the last free step); {cause}"), s
