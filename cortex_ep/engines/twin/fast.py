"""A fused relaxation for the hard sigmoid, the twin's hot loop.

With ρ = clip(s, 0, 1) and the state kept in [0, 1], ρ(s) = s and ρ'(s) = 1,
so one projected Euler step of the dynamics of :mod:`cortex_ep.model.energy` is, per population,

    s ← clip((1 − h − h β_l) s + h (b + I_input + β_l d) + Σ s_other (h W), 0, 1)

with h = dt/τ and β_l ≠ 0 only on the output (plus ``h L s`` per column where a
population has lateral weights).  Everything but the coupling
to other dynamic populations is constant during a phase, so a step costs one
``addmm`` per coupling, one scaled add and one clamp per population.  It is
the same arithmetic as :func:`cortex_ep.model.energy.euler_step` (tests compare
them); :func:`relax` falls back to that generic step for other activations.
"""

from __future__ import annotations

import math

import torch

from ...model import dynamics, energy
from ...model.spec import Network


def relax(net: Network, s: dict, W: dict, b: dict, steps: int, target=None, beta=0.0,
          activation: str = "hard_sigmoid", noise: float = 0.0, rng=None,
          fixed: dict | None = None) -> dict:
    """``steps`` projected Euler steps from ``s`` (``beta``: scalar or (batch,) tensor)."""
    if activation != "hard_sigmoid":
        return dynamics.relax(net, s, W, b, steps, target, beta, activation, noise, rng,
                              fixed)
    if fixed is None:
        fixed = energy.input_currents(net, s[net.input.name], W, activation)
    h = net.dt / net.tau
    out = net.output.name
    beta_col = beta[:, None] if getattr(beta, "ndim", 0) == 1 else beta
    nudged = not (getattr(beta, "ndim", 0) == 0 and float(beta) == 0.0)
    const, decay = {}, {}
    for pop in net.dynamic:
        c = b[pop.name] + fixed.get(pop.name, 0.0)
        if pop.name == out and nudged:
            c = c + beta_col * target
        const[pop.name] = (h * c).expand_as(s[pop.name]).contiguous()
        decay[pop.name] = (1.0 - h - h * beta_col) if (pop.name == out and nudged) else 1.0 - h
    couplings = {pop.name: [] for pop in net.dynamic}
    for proj in net.projections:
        if proj.pre == net.input.name:
            continue
        couplings[proj.post].append((proj.pre, h * W[proj.name]))
        couplings[proj.pre].append((proj.post, h * energy.top_down(proj, W).T))
    lateral = {pop.name: h * W[energy.lateral_name(pop.name)] for pop in net.lateral}
    scale = noise * math.sqrt(h)
    s = dict(s)
    for _ in range(steps):
        new = {}
        for name, links in couplings.items():
            acc = const[name]
            for other, weight in links:
                acc = torch.addmm(acc, s[other], weight)
            if name in lateral:
                acc = acc + energy.lateral_current(s[name], lateral[name])
            if isinstance(decay[name], float):
                acc = acc.add(s[name], alpha=decay[name]) if acc is const[name] \
                    else acc.add_(s[name], alpha=decay[name])
            else:
                acc = acc.addcmul(s[name], decay[name]) if acc is const[name] \
                    else acc.addcmul_(s[name], decay[name])
            if noise:
                acc.add_(rng(acc), alpha=scale)
            new[name] = acc.clamp_(0.0, 1.0)
        s.update(new)
    return s
