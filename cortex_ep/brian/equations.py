"""Brian2 equations and synapse code for EP, generated from a network spec.

Every sample occupies ``steps_per_sample`` Euler steps of one long Brian2 run;
``k`` is the step within the sample:

====================  ====================================================
k                     what happens
====================  ====================================================
0 (slot ``start``)    the input synapses add ``w ρ(x)`` of the new sample
                      to ``I_<proj>`` of their target (once per sample)
0 … T1−1              free phase, β = 0
T1 … T1+T2−1          nudged phase at ``β · sign`` (the sample's sign)
T1+T2 … T1+2T2−1      symmetric estimator only: nudged phase at −β,
                      restarted from the free fixed point
end of each phase     custom events store ``s0``, ``ra``, ``rb``
S−1                   ``learn``: synapses accumulate the EP update in
                      ``dw``; ``apply`` (last sample of a batch): ``w +=
                      lr · dw / B``; ``finish``: state and input reset
====================  ====================================================

The dynamics are DESIGN.md's, in physical units::

    ds/dt = (−s + ρ'(s) (Σ I + b) + β_now (d − s)) / τ  [+ σ ξ / √τ]

integrated by :data:`projected_euler` (Euler, then clip to [0, 1]).
"""

from __future__ import annotations

from brian2.stateupdaters.base import StateUpdateMethod
from brian2.stateupdaters.explicit import euler

from ..energy import get_activation
from ..spec import Network, Population, Projection


class ProjectedEuler(StateUpdateMethod):
    """Euler(-Maruyama) step followed by the projection onto the box [0, 1].

    Without the projection a unit that dips below 0 has ρ' = 0 and is trapped
    there; learning then fails (DESIGN.md).
    """

    def can_integrate(self, equations, variables, method_options=None):
        return euler.can_integrate(equations, variables, method_options)

    def __call__(self, equations, variables=None, method_options=None):
        code = euler(equations, variables, method_options)
        clips = [f"{name} = clip({name}, 0, 1)" for name in equations.diff_eq_names]
        return "\n".join([code, *clips])


#: The integration method of every hidden and output population.
projected_euler = ProjectedEuler()

PHASE_CLOCK = "k = timestep(t, dt) % steps_per_sample : integer"


#: the neuron variable receiving the in-column lateral current ``Σ_j L_ij ρ_j``
LATERAL_CURRENT = "I_lateral"


def lateral_synapse_model() -> str:
    """Lateral synapses ``j -> i`` within a column: one per ordered pair, so that the
    symmetric ``L`` is two synapses with equal weights (they get equal updates)."""
    return "\n".join(["w : 1", "dw : 1", f"{LATERAL_CURRENT}_post = w * r_pre : 1 (summed)"])


def lateral_synapse_event_code(pop: Population) -> dict:
    """``{event: code}`` of a population's lateral synapses: the EP rule of a projection."""
    return {
        "learn": "dw += ep_factor(t) * (ra_pre * ra_post - rb_pre * rb_post)",
        "apply": f"w += lr_lateral_{pop.name} * apply_scale(t) * dw\ndw = 0",
    }


def lateral_pairs(pop: Population):
    """Pre and post indices ``(i, j)`` of the lateral synapses, shape ``(C·K·(K−1),)``
    each, and the block entry ``(column, row, col)`` each synapse carries."""
    import numpy as np

    k = pop.column_size
    col, row, other = np.meshgrid(np.arange(pop.n_columns), np.arange(k), np.arange(k),
                                  indexing="ij")
    keep = row != other
    col, row, other = col[keep], row[keep], other[keep]
    return col * k + row, col * k + other, (col, row, other)


def current_name(proj: Projection) -> str:
    """Name of the neuron variable that receives ``proj``'s current."""
    return f"I_{proj.name}"


def input_rate_expression(activation: str) -> str:
    return get_activation(activation).brian_rho.format(s="x")


def input_equations(activation: str) -> str:
    """Clamped input population: ``x`` read from the ``pixels`` TimedArray."""
    return "\n".join([
        "x = pixels(t, i) : 1",
        f"r = {input_rate_expression(activation)} : 1",
        PHASE_CLOCK,
    ])


def population_equations(net: Network, pop: Population, activation: str,
                         noise: bool) -> str:
    """Equations of a hidden or output population."""
    act = get_activation(activation)
    currents = [current_name(p) for p in net.projections if pop.name in (p.pre, p.post)]
    if pop.lateral:
        currents.append(LATERAL_CURRENT)
    nudge = " + beta_now * (d - s)" if pop.role == "output" else ""
    noise_term = " + sigma * xi / sqrt(tau)" if noise else ""
    lines = [
        f"ds/dt = (-s + rho_prime * ({' + '.join(currents + ['b'])}){nudge}) / tau"
        f"{noise_term} : 1",
        f"r = {act.brian_rho.format(s='s')} : 1",
        f"rho_prime = {act.brian_rho_prime.format(s='s')} : 1",
        "b : 1",
        "db : 1",
        "s0 : 1",
        "ra : 1",
        "rb : 1",
        PHASE_CLOCK,
    ]
    for proj in net.projections:
        if proj.post == pop.name and net[proj.pre].role == "input":
            lines.append(f"{current_name(proj)} : 1")
        elif pop.name in (proj.pre, proj.post):
            lines.append(f"{current_name(proj)} : 1")
    if pop.lateral:
        lines.append(f"{LATERAL_CURRENT} : 1")
    if pop.role == "output":
        lines += [
            "d = target_table(t, i) : 1",
            # +β·sign in the first nudged phase, −β·sign in the second (symmetric)
            "beta_now = beta * nudge_sign(t) * int(k >= T_free)"
            " * (1 - 2 * int(k >= T_free + T_nudge)) : 1",
        ]
    return "\n".join(lines)


def population_events(symmetric: bool) -> dict:
    """Custom events of a hidden or output population (conditions on ``k``)."""
    events = {
        "free_end": "k == T_free - 1",
        "pos_end": "k == T_free + T_nudge - 1",
        "learn": "k == steps_per_sample - 1 and ep_factor(t) != 0",
        "apply": "k == steps_per_sample - 1 and apply_scale(t) > 0",
        "finish": "k == steps_per_sample - 1",
    }
    if symmetric:
        events["neg_end"] = "k == T_free + 2 * T_nudge - 1"
    return events


def population_event_code(net: Network, pop: Population, symmetric: bool) -> dict:
    """``{event: code}`` run by a hidden or output population."""
    resets = "\n".join(["s = 0"] + [f"{current_name(p)} = 0" for p in net.projections
                                    if p.post == pop.name and net[p.pre].role == "input"])
    code = {
        # one-sided / random-sign compare with the free phase: rb = ρ(s⁰)
        "free_end": "s0 = s\nrb = r",
        # symmetric restarts the −β phase from the free fixed point
        "pos_end": "ra = r\ns = s0",
        "learn": "db += ep_factor(t) * (ra - rb)",
        "apply": f"b += lr_bias_{pop.name} * apply_scale(t) * db\ndb = 0",
        "finish": resets,
    }
    if symmetric:
        code["neg_end"] = "rb = r"
    return code


def input_events() -> dict:
    """Custom events of the input population; silent pixels (ρ(x) = 0) skip work."""
    return {
        "present": "k == 0 and r != 0",
        "learn": "k == steps_per_sample - 1 and ep_factor(t) != 0 and r != 0",
        "apply": "k == steps_per_sample - 1 and apply_scale(t) > 0",
    }


def synapse_model(net: Network, proj: Projection) -> str:
    """Synapse equations: the shared weight and, between dynamic groups, the
    summed currents both ways."""
    lines = ["w : 1", "dw : 1"]
    if net[proj.pre].role != "input":
        name = current_name(proj)
        lines += [f"{name}_post = w * r_pre : 1 (summed)",
                  f"{name}_pre = w * r_post : 1 (summed)"]
    return "\n".join(lines)


def synapse_event_code(net: Network, proj: Projection) -> dict:
    """``{event: code}`` of a projection's synapses (events of the pre group)."""
    code = {
        "learn": "dw += ep_factor(t) * (ra_pre * ra_post - rb_pre * rb_post)",
        "apply": f"w += lr_{proj.name} * apply_scale(t) * dw\ndw = 0",
    }
    if net[proj.pre].role == "input":
        code["present"] = f"{current_name(proj)}_post += w * r_pre"
        # the clamped rate is the same in every phase
        code["learn"] = "dw += ep_factor(t) * r_pre * (ra_post - rb_post)"
    return code
