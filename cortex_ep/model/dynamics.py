"""Relaxation loops over :func:`cortex_ep.model.energy.euler_step`, for numpy and torch alike.

The numpy reference, the torch twin and the gradient checks all relax with
these functions; only the array type differs.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import energy
from .spec import Network


def zero_state(net: Network, x) -> dict:
    """State with the input clamped to ``x`` (batch, N_in) and every other unit at 0."""
    if hasattr(x, "new_zeros"):  # torch
        s = {p.name: x.new_zeros((x.shape[0], p.size)) for p in net.dynamic}
    else:
        import numpy as np

        s = {p.name: np.zeros((x.shape[0], p.size), dtype=x.dtype) for p in net.dynamic}
    s[net.input.name] = x
    return s


def relax(net, s, W, b, steps, target=None, beta=0.0, activation="hard_sigmoid",
          noise=0.0, rng=None, fixed=None) -> dict:
    """``steps`` projected Euler steps from ``s``; returns the new state."""
    if fixed is None:
        fixed = energy.input_currents(net, s[net.input.name], W, activation)
    for _ in range(steps):
        s = energy.euler_step(net, s, W, b, target, beta, activation, noise, rng, fixed)
    return s


def on_boundary(net: Network, s: dict) -> dict:
    """Units on a face of the box [0, 1] (bool arrays, per population)."""
    return {p.name: (s[p.name] <= 0.0) | (s[p.name] >= 1.0) for p in net.dynamic}


@dataclass
class Relaxed:
    """A state after relaxation: ``residual`` is max |ds/dt|·τ at the last step."""

    state: dict
    steps: int
    residual: float


def relax_to_tolerance(net, s, W, b, tol, max_steps, target=None, beta=0.0,
                       activation="hard_sigmoid", check_every=20, fixed=None,
                       patience=10, max_halvings=6) -> Relaxed:
    """Relax (noise-free) until max |ds/dt|·τ < ``tol`` or ``max_steps`` steps.

    The residual is checked every ``check_every`` steps; a residual of exactly
    0 means the floating-point map has reached its fixed point.  When the
    residual has not improved for ``patience`` checks, either the Euler map
    oscillates (the residual stays far above the arithmetic's rounding level):
    then the step is halved, up to ``max_halvings`` times — the fixed point of
    the flow does not depend on the step; or the state sits at the rounding
    floor above ``tol``: then relaxing stops (``Relaxed.residual`` tells).
    ``fixed``: the input currents, if already computed.
    """
    h = net.dt / net.tau
    if fixed is None:
        fixed = energy.input_currents(net, s[net.input.name], W, activation)
    rounding = 1e6 * _eps(s[net.dynamic[0].name])

    def step(state):
        return energy.euler_step(net, state, W, b, target, beta, activation, fixed=fixed,
                                 h=h)

    steps, residual, best, stalled, halvings = 0, float("inf"), float("inf"), 0, 0
    while steps < max_steps:
        n = min(check_every, max_steps - steps)
        for _ in range(n - 1):
            s = step(s)
        new = step(s)
        residual = float(max(abs(new[p.name] - s[p.name]).max() for p in net.dynamic)) / h
        s, steps = new, steps + n
        if residual < tol:
            break
        stalled = stalled + 1 if residual >= best else 0
        best = min(best, residual)
        if stalled >= patience:
            if residual < rounding or halvings == max_halvings:
                break
            h, halvings, stalled, best = h / 2, halvings + 1, 0, float("inf")
    return Relaxed(s, steps, residual)


def _eps(x) -> float:
    """Machine epsilon of an array's or a tensor's float type."""
    import numpy as np

    if hasattr(x, "is_floating_point"):  # torch
        import torch

        return float(torch.finfo(x.dtype).eps)
    return float(np.finfo(np.asarray(x).dtype).eps)


def record_phases(net, x, d, W, b, free_steps, nudged_steps, beta, symmetric: bool,
                  activation="hard_sigmoid", noise=0.0, rng=None,
                  continual: bool = False) -> dict:
    """States after every Euler step of the free phase, the nudged phase at ``beta``
    (scalar or per sample) and, if ``symmetric``, the phase at ``−beta``.

    With ``continual`` (the continual rule's order, :mod:`cortex_ep.model.plasticity`)
    the symmetric phases run −β first and +β carries on from its end.

    Returns ``{population: [state after step 1, step 2, ...]}``, phases back to
    back; the caller stacks the lists with its array library.
    """
    trace = {p.name: [] for p in net.dynamic}
    fixed = energy.input_currents(net, x, W, activation)

    def run(s, steps, target=None, beta_=0.0):
        for _ in range(steps):
            s = energy.euler_step(net, s, W, b, target, beta_, activation, noise, rng, fixed)
            for name in trace:
                trace[name].append(s[name])
        return s

    s0 = run(zero_state(net, x), free_steps)
    if continual and symmetric:
        run(run(s0, nudged_steps, d, -beta), nudged_steps, d, beta)
        return trace
    run(s0, nudged_steps, d, beta)
    if symmetric:
        run(s0, nudged_steps, d, -beta)
    return trace
