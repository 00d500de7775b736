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

Under the continual rule (:mod:`cortex_ep.model.plasticity`) nothing is stored:
every step of the learning phase raises the event ``plastic``, on which each
synapse adds ``lr · step_scale · (r_pre r_post − r_prev_pre r_prev_post)``
(``r_prev``: the neuron's rate one step earlier, its one-step trace, copied at
the end of every step); the current from the clamped input follows its
synapses' changes, ``Σ_i ρ(x_i) Δw_i = lr · step_scale · Σ_i ρ(x_i)² · Δr``,
added by the neuron from ``Σ_i ρ(x_i)²`` that its input synapses sum at each
presentation.  Since nothing but that current reads an input weight during the
phase, the input synapses add their steps' changes, which telescope to
``lr · step_scale · ρ(x_i) (r_post − r_start_post)``, at its last step
(``r_start``: the rate before the phase).  The symmetric estimator runs −β
first and learns during the +β phase that follows, without a reset.  Separate
feedback is a second Synapses object from the post to the pre population
carrying ``B``.

Spiking neurons (:mod:`cortex_ep.model.neurons`: Poisson or integrate-and-fire,
each giving its own threshold, reset and membrane equations) fire at
``r_max ρ(s)``; their synapses add ``w / (r_max τ_syn)`` per spike to the post
(and, tied, per post spike to the pre) neuron's ``I_spikes``, which decays
with τ_syn.  The plasticity rules read the spike trace ``x`` (a jump of
``1 / (r_max τ_trace)`` per spike, decaying with τ_trace) wherever the rate
model reads ``r``; the continual rule then is a differential Hebbian rule on
spike traces: ``Δw = lr · step_scale · Δ(x_pre x_post)`` at every step.  With
the ``count`` read-out the phase rule reads ``n · count_scale`` instead: the
unit's count ``n`` of spikes since its window opened (at the event
``window_start``, ``T_nudge`` steps before the free phase ends, and at each
phase end).  A restarted −β phase takes back the synaptic current, trace and
(carried) membrane of the free phase's end along with ``s``.

The dynamics are those of :mod:`cortex_ep.model.energy`, in physical units::

    ds/dt = (−s + ρ'(s) (Σ I + b) + β_now (d − s)) / τ  [+ σ ξ / √τ]

integrated by :data:`projected_euler` (Euler, then clip to [0, 1]).
"""

from __future__ import annotations

from brian2.stateupdaters.base import StateUpdateMethod
from brian2.stateupdaters.explicit import euler

from ...model import neurons
from ...model.energy import get_activation
from ...model.spec import Network, Population, Projection


class ProjectedEuler(StateUpdateMethod):
    """Euler(-Maruyama) step followed by the projection of ``s`` onto the box [0, 1]
    (and of an integrate-and-fire membrane ``v`` onto ``v >= 0``).

    Without the projection a unit that dips below 0 has ρ' = 0 and is trapped
    there; learning then fails (the docs' model page).  A noisy membrane
    without leak would otherwise drift ever further below threshold.
    """

    def can_integrate(self, equations, variables, method_options=None):
        return euler.can_integrate(equations, variables, method_options)

    def __call__(self, equations, variables=None, method_options=None):
        code = euler(equations, variables, method_options)
        # synaptic currents and spike traces are not states of the box
        bounds = {"s": "clip(s, 0, 1)", "v": "clip(v, 0, inf)"}
        clips = [f"{name} = {bounds[name]}" for name in equations.diff_eq_names
                 if name in bounds]
        return "\n".join([code, *clips])


#: The integration method of every hidden and output population.
projected_euler = ProjectedEuler()

PHASE_CLOCK = "k = timestep(t, dt) % steps_per_sample : integer"


#: the neuron variable receiving the in-column lateral current ``Σ_j L_ij ρ_j``
LATERAL_CURRENT = "I_lateral"


#: the neuron variable receiving the filtered spikes of all its dynamic synapses
SPIKE_CURRENT = neurons.SPIKE_CURRENT


def seen(spikes) -> str:
    """What the continual rule reads of a unit: its rate ``r``, or its spike trace ``x``."""
    return "x" if spikes else "r"


def phase_read(spikes) -> str:
    """What the phase rule reads of a unit at a phase end: ``seen``, or its window count."""
    return "n * count_scale" if spikes and spikes.counts else seen(spikes)


def previous(spikes) -> str:
    """The continual rule's one-step trace: ``seen`` one step ago."""
    return f"{seen(spikes)}_prev"


def learn_start(spikes) -> str:
    """``seen`` just before the continual rule's learning phase."""
    return f"{seen(spikes)}_start"


def rule_code(lr: str, continual: bool, spikes=None, decay: str | None = None) -> dict:
    """``{event: code}`` of a synapse between two dynamic populations learning at
    the namespace constant ``lr``: the phase rule or the continual rule; with
    ``decay`` (the namespace constant ``lr · λ`` of a Kolen–Pollack projection)
    the weight shrinks by ``1 − lr · λ`` (times the epoch's rate factor) at the
    end of every minibatch."""
    shrink = [f"w *= 1 - {decay} * decay_scale(t)"] if decay else []
    if continual:
        v, p = seen(spikes), previous(spikes)
        code = {"plastic": f"w += {lr} * step_scale(t) * "
                           f"({v}_pre * {v}_post - {p}_pre * {p}_post)"}
        if decay:
            code["apply"] = shrink[0]
        return code
    return {
        "learn": "dw += ep_factor(t) * (ra_pre * ra_post - rb_pre * rb_post)",
        "apply": "\n".join([f"w += {lr} * apply_scale(t) * dw", "dw = 0", *shrink]),
    }


def decay_name(proj: Projection) -> str | None:
    """The namespace constant ``lr · λ`` of a Kolen–Pollack projection, else None."""
    return f"decay_{proj.name}" if proj.feedback_learning == "kolen-pollack" else None


def learns(proj: Projection, feedback: bool) -> bool:
    """Whether these synapses (the projection's, or with ``feedback`` its separate
    feedback synapses) change: fixed feedback does not."""
    return not (feedback and proj.feedback_learning == "fixed")


def weight_variables(continual: bool) -> list[str]:
    """A synapse's weight and, under the phase rule, its accumulated update."""
    return ["w : 1"] if continual else ["w : 1", "dw : 1"]


def lateral_synapse_model(continual: bool = False, spikes=None) -> str:
    """Lateral synapses ``j -> i`` within a column: one per ordered pair, so that the
    symmetric ``L`` is two synapses with equal weights (they get equal updates)."""
    current = [] if spikes else [f"{LATERAL_CURRENT}_post = w * r_pre : 1 (summed)"]
    return "\n".join(weight_variables(continual) + current)


def lateral_synapse_event_code(pop: Population, continual: bool = False,
                               spikes=None) -> dict:
    """``{event: code}`` of a population's lateral synapses: the EP rule of a projection."""
    code = rule_code(f"lr_lateral_{pop.name}", continual, spikes)
    if spikes:
        code["spike"] = f"{SPIKE_CURRENT}_post += w * spike_current"
    return code


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
                         negative_first: bool = False, spikes=None) -> str:
    """Equations of a hidden or output population.

    ``negative_first``: the first nudged phase is at −β (the continual rule's
    symmetric order).  ``spikes``: the :class:`~cortex_ep.model.neurons.Spiking` model,
    or None for rate neurons.
    """
    act = get_activation(activation)
    inputs = [current_name(p) for p in _input_projections(net, pop)]
    if spikes:
        dynamic = [SPIKE_CURRENT]
    else:
        dynamic = [current_name(p) for p in net.projections
                   if pop.name in (p.pre, p.post) and net[p.pre].role != "input"]
        dynamic += [LATERAL_CURRENT] if pop.lateral else []
    nudge = " + beta_now * (d - s)" if pop.role == "output" else ""
    noise_term = " + sigma * xi / sqrt(tau)" if noise else ""
    lines = [
        f"ds/dt = (-s + rho_prime * ({' + '.join(inputs + dynamic + ['b'])}){nudge}) / tau"
        f"{noise_term} : 1",
        f"r = {act.brian_rho.format(s='s')} : 1",
        f"rho_prime = {act.brian_rho_prime.format(s='s')} : 1",
        "b : 1",
        "db : 1",
        "s0 : 1",
        "ra : 1",
        "rb : 1",
        PHASE_CLOCK,
        *(f"{name} : 1" for name in inputs),
    ]
    if spikes:
        lines += spikes.equations()
    else:
        lines += [f"{name} : 1" for name in dynamic]
    if continual:
        lines += [f"{previous(spikes)} : 1", f"{learn_start(spikes)} : 1"]
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
#: its last step, when the input synapses add their telescoped change
LAST_PLASTIC_STEP = "k == T_learn + T_nudge - 1 and step_scale(t) != 0"

#: a minibatch's last step: the phase rule applies its update, Kolen–Pollack decays
BATCH_END = "k == steps_per_sample - 1 and apply_scale(t) > 0"


def population_events(symmetric: bool, continual: bool = False, spikes=None,
                      decaying: bool = False) -> dict:
    """Custom events of a hidden or output population (conditions on ``k``);
    ``decaying``: some synapses decay at a minibatch's end (Kolen–Pollack)."""
    if continual:
        # free_end only marks the free phase's output for the monitor: nothing is stored
        return {"free_end": "k == T_free - 1", "plastic": PLASTIC_STEPS,
                "learn_start": "k == T_learn and step_scale(t) != 0",
                "finish": "k == steps_per_sample - 1",
                **({"apply": BATCH_END} if decaying else {})}
    events = {
        "free_end": "k == T_free - 1",
        "pos_end": "k == T_free + T_nudge - 1",
        "learn": "k == steps_per_sample - 1 and ep_factor(t) != 0",
        "apply": BATCH_END,
        "finish": "k == steps_per_sample - 1",
    }
    if symmetric:
        events["neg_end"] = "k == T_free + 2 * T_nudge - 1"
    if spikes and spikes.counts:
        events["window_start"] = "k == T_free - T_nudge"
    return events


def population_event_code(net: Network, pop: Population, symmetric: bool,
                          continual: bool = False, spikes=None) -> dict:
    """``{event: code}`` run by a hidden or output population."""
    inputs = _input_projections(net, pop)
    v, prev = seen(spikes), previous(spikes)
    resets = "\n".join(["s = 0"] + [f"{current_name(p)} = 0" for p in inputs]
                       + ([f"{input_norm_name(p)} = 0" for p in inputs] if continual else [])
                       + [f"{name} = 0" for name in (spikes.cleared() if spikes else [])]
                       + (spikes.sample_end_code() if spikes else []))
    next_phase = spikes.phase_start_code() if spikes else []
    if continual:
        # The input synapses change by lr·scale·ρ(x_i)·Δv, so the current they feed
        # changes by Σ_i ρ(x_i) Δw_i = lr·scale·Σ_i ρ(x_i)²·Δv: the neuron adds it
        # itself instead of every synapse writing to it
        follow = [f"{current_name(p)} += lr_{p.name} * step_scale(t) * "
                  f"{input_norm_name(p)} * ({v} - {prev})" for p in inputs]
        return {"plastic": "\n".join([f"b += lr_bias_{pop.name} * step_scale(t) * "
                                      f"({v} - {prev})", *follow]),
                "learn_start": f"{learn_start(spikes)} = {prev}",
                "finish": resets,
                **({"free_end": "\n".join(next_phase)} if next_phase else {})}
    read = phase_read(spikes)
    restarted = ("s", *(spikes.restarted if spikes else ()))
    # a read window closes with its phase and the next one opens
    window = ["n = 0"] if spikes and spikes.counts else []
    code = {
        # one-sided / random-sign compare with the free phase: rb = ρ(s⁰)
        "free_end": "\n".join([*(f"{name}0 = {name}" for name in restarted),
                               f"rb = {read}", *window, *next_phase]),
        # symmetric restarts the −β phase from the free fixed point
        "pos_end": "\n".join([f"ra = {read}", *(f"{name} = {name}0" for name in restarted),
                              *window, *next_phase]),
        "learn": "db += ep_factor(t) * (ra - rb)",
        "apply": f"b += lr_bias_{pop.name} * apply_scale(t) * db\ndb = 0",
        "finish": resets,
    }
    if symmetric:
        code["neg_end"] = f"rb = {read}"
    if window:
        code["window_start"] = "n = 0"
    return code


def input_events(continual: bool = False) -> dict:
    """Custom events of the input population; silent pixels (ρ(x) = 0) skip work."""
    if continual:
        return {"present": "k == 0 and r != 0", "plastic": f"{LAST_PLASTIC_STEP} and r != 0"}
    return {
        "present": "k == 0 and r != 0",
        "learn": "k == steps_per_sample - 1 and ep_factor(t) != 0 and r != 0",
        "apply": "k == steps_per_sample - 1 and apply_scale(t) > 0",
    }


def synapse_model(net: Network, proj: Projection, continual: bool = False,
                  spikes=None) -> str:
    """Synapse equations: the weight and, between dynamic rate groups, the summed
    currents both ways (tied) or bottom-up only (separate feedback)."""
    lines = weight_variables(continual)
    if net[proj.pre].role != "input" and not spikes:
        name = current_name(proj)
        lines.append(f"{name}_post = w * r_pre : 1 (summed)")
        if not proj.separate:
            lines.append(f"{name}_pre = w * r_post : 1 (summed)")
    return "\n".join(lines)


def feedback_synapse_model(proj: Projection, continual: bool = False, spikes=None) -> str:
    """The separate feedback synapses of ``proj``, from its post to its pre
    population: the top-down current ``B ρ_post``."""
    current = [] if spikes else [f"{current_name(proj)}_post = w * r_pre : 1 (summed)"]
    return "\n".join(weight_variables(continual) + current)


def synapse_event_code(net: Network, proj: Projection, continual: bool = False,
                       spikes=None, feedback: bool = False) -> tuple[dict, dict]:
    """``({event of the pre group: code}, {event of the post group: code})`` of a
    projection's synapses, or with ``feedback`` of its separate feedback synapses."""
    code = (rule_code(f"lr_{proj.name}", continual, spikes, decay_name(proj))
            if learns(proj, feedback) else {})
    if net[proj.pre].role != "input":
        back = {}
        if spikes:
            code["spike"] = f"{SPIKE_CURRENT}_post += w * spike_current"
            if not (proj.separate or feedback):
                back["spike_back"] = f"{SPIKE_CURRENT}_pre += w * spike_current"
        return code, back
    code["present"] = f"{current_name(proj)}_post += w * r_pre"
    if continual:
        code["present"] += f"\n{input_norm_name(proj)}_post += r_pre * r_pre"
        # the clamped rate is constant, so the steps' changes r_pre·Δv_post telescope
        # (the current follows in the post neuron's own code)
        code["plastic"] = (f"w += lr_{proj.name} * step_scale(t) * {HELD_INPUT_RATE}_pre * "
                           f"({seen(spikes)}_post - {learn_start(spikes)}_post)")
    else:
        # the clamped rate is the same in every phase
        code["learn"] = "dw += ep_factor(t) * r_pre * (ra_post - rb_post)"
    return code, {}
