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

Under the continual rule (:mod:`cortex_ep.plasticity`) nothing is stored:
every step of the learning phase raises the event ``plastic``, on which each
synapse adds ``lr · step_scale · (r_pre r_post − r_prev_pre r_prev_post)``
(``r_prev``: the neuron's rate one step earlier, its one-step trace, copied at
the end of every step); the current from the clamped input follows its
synapses' changes, ``Σ_i ρ(x_i) Δw_i = lr · step_scale · Σ_i ρ(x_i)² · Δr``,
added by the neuron from ``Σ_i ρ(x_i)²`` that its input synapses sum at each
presentation; the symmetric estimator runs −β first and learns during the
+β phase that follows, without a reset.  Separate feedback is a second
Synapses object from the post to the pre population carrying ``B``.

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


#: the neuron's rate one step ago, the continual rule's one-step trace
RATE_TRACE = "r_prev"


def rule_code(lr: str, continual: bool) -> dict:
    """``{event: code}`` of a synapse between two dynamic populations learning at
    the namespace constant ``lr``: the phase rule or the continual rule."""
    if continual:
        return {"plastic": f"w += {lr} * step_scale(t) * "
                           f"(r_pre * r_post - {RATE_TRACE}_pre * {RATE_TRACE}_post)"}
    return {
        "learn": "dw += ep_factor(t) * (ra_pre * ra_post - rb_pre * rb_post)",
        "apply": f"w += {lr} * apply_scale(t) * dw\ndw = 0",
    }


def weight_variables(continual: bool) -> list[str]:
    """A synapse's weight and, under the phase rule, its accumulated update."""
    return ["w : 1"] if continual else ["w : 1", "dw : 1"]


def lateral_synapse_model(continual: bool = False) -> str:
    """Lateral synapses ``j -> i`` within a column: one per ordered pair, so that the
    symmetric ``L`` is two synapses with equal weights (they get equal updates)."""
    return "\n".join(weight_variables(continual)
                     + [f"{LATERAL_CURRENT}_post = w * r_pre : 1 (summed)"])


def lateral_synapse_event_code(pop: Population, continual: bool = False) -> dict:
    """``{event: code}`` of a population's lateral synapses: the EP rule of a projection."""
    return rule_code(f"lr_lateral_{pop.name}", continual)


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


def input_norm_name(proj: Projection) -> str:
    """Neuron variable holding ``Σ_i ρ(x_i)²`` over the input synapses of ``proj``
    (summed by the synapses at each presentation; the continual rule only)."""
    return f"x2_{proj.name}"


def _input_projections(net: Network, pop: Population):
    return [p for p in net.projections if p.post == pop.name and net[p.pre].role == "input"]


def current_name(proj: Projection) -> str:
    """Name of the neuron variable that receives ``proj``'s current."""
    return f"I_{proj.name}"


def input_rate_expression(activation: str) -> str:
    return get_activation(activation).brian_rho.format(s="x")


#: the continual rule's copy of the clamped input rate, taken at each presentation
HELD_INPUT_RATE = "r_held"


def input_equations(activation: str, continual: bool = False) -> str:
    """Clamped input population: ``x`` read from the ``pixels`` TimedArray.

    Under the continual rule the input synapses read the rate at every nudged
    step; ``r_held`` keeps it from the presentation instead of looking the
    table up for every synapse and step.
    """
    return "\n".join([
        "x = pixels(t, i) : 1",
        f"r = {input_rate_expression(activation)} : 1",
        PHASE_CLOCK,
        *([f"{HELD_INPUT_RATE} : 1"] if continual else []),
    ])


def population_equations(net: Network, pop: Population, activation: str,
                         noise: bool, continual: bool = False,
                         negative_first: bool = False) -> str:
    """Equations of a hidden or output population.

    ``negative_first``: the first nudged phase is at −β (the continual rule's
    symmetric order).
    """
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
    if continual:
        lines.append(f"{RATE_TRACE} : 1")
        lines += [f"{input_norm_name(p)} : 1" for p in _input_projections(net, pop)]
    if pop.role == "output":
        lines += [
            "d = target_table(t, i) : 1",
            # +β·sign in the first nudged phase, −β·sign in the second (symmetric)
            f"beta_now = {'-' if negative_first else ''}beta * nudge_sign(t) * int(k >= T_free)"
            " * (1 - 2 * int(k >= T_free + T_nudge)) : 1",
        ]
    return "\n".join(lines)


#: the continual rule learns at the steps T_learn … T_learn + T_nudge − 1
PLASTIC_STEPS = "k >= T_learn and k < T_learn + T_nudge and step_scale(t) != 0"


def population_events(symmetric: bool, continual: bool = False) -> dict:
    """Custom events of a hidden or output population (conditions on ``k``)."""
    if continual:
        # free_end only marks the free phase's output for the monitor: nothing is stored
        return {"free_end": "k == T_free - 1", "plastic": PLASTIC_STEPS,
                "finish": "k == steps_per_sample - 1"}
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


def population_event_code(net: Network, pop: Population, symmetric: bool,
                          continual: bool = False) -> dict:
    """``{event: code}`` run by a hidden or output population."""
    inputs = _input_projections(net, pop)
    resets = "\n".join(["s = 0"] + [f"{current_name(p)} = 0" for p in inputs]
                       + ([f"{input_norm_name(p)} = 0" for p in inputs] if continual else []))
    if continual:
        # The input synapses change by lr·scale·ρ(x_i)·Δr (the input is clamped), so the
        # current they feed changes by Σ_i ρ(x_i) Δw_i = lr·scale·Σ_i ρ(x_i)²·Δr: the
        # neuron adds it itself instead of every synapse writing to it
        follow = [f"{current_name(p)} += lr_{p.name} * step_scale(t) * "
                  f"{input_norm_name(p)} * (r - {RATE_TRACE})" for p in inputs]
        return {"plastic": "\n".join([f"b += lr_bias_{pop.name} * step_scale(t) * "
                                      f"(r - {RATE_TRACE})", *follow]),
                "finish": resets}
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


def input_events(continual: bool = False) -> dict:
    """Custom events of the input population; silent pixels (ρ(x) = 0) skip work."""
    if continual:
        return {"present": "k == 0 and r != 0", "plastic": f"{PLASTIC_STEPS} and r != 0"}
    return {
        "present": "k == 0 and r != 0",
        "learn": "k == steps_per_sample - 1 and ep_factor(t) != 0 and r != 0",
        "apply": "k == steps_per_sample - 1 and apply_scale(t) > 0",
    }


def synapse_model(net: Network, proj: Projection, continual: bool = False) -> str:
    """Synapse equations: the weight and, between dynamic groups, the summed
    currents both ways (tied) or bottom-up only (separate feedback)."""
    lines = weight_variables(continual)
    if net[proj.pre].role != "input":
        name = current_name(proj)
        lines.append(f"{name}_post = w * r_pre : 1 (summed)")
        if not proj.separate:
            lines.append(f"{name}_pre = w * r_post : 1 (summed)")
    return "\n".join(lines)


def feedback_synapse_model(proj: Projection, continual: bool = False) -> str:
    """The separate feedback synapses of ``proj``, from its post to its pre
    population: the top-down current ``B ρ_post``."""
    return "\n".join(weight_variables(continual)
                     + [f"{current_name(proj)}_post = w * r_pre : 1 (summed)"])


def synapse_event_code(net: Network, proj: Projection, continual: bool = False) -> dict:
    """``{event: code}`` of a projection's synapses (events of the pre group); the
    feedback synapses of a separate projection use the same code."""
    code = rule_code(f"lr_{proj.name}", continual)
    if net[proj.pre].role != "input":
        return code
    code["present"] = f"{current_name(proj)}_post += w * r_pre"
    if continual:
        code["present"] += f"\n{input_norm_name(proj)}_post += r_pre * r_pre"
        # the clamped rate is constant, so the product changes by r_pre·Δr_post (the
        # current follows in the post neuron's own code)
        code["plastic"] = (f"w += lr_{proj.name} * step_scale(t) * {HELD_INPUT_RATE}_pre * "
                           f"(r_post - {RATE_TRACE}_post)")
    else:
        # the clamped rate is the same in every phase
        code["learn"] = "dw += ep_factor(t) * r_pre * (ra_post - rb_post)"
    return code
