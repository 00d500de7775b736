"""The Brian2 engine: EP training and recording inside one Brian2 run.

A :class:`BrianEngine` turns a :class:`~cortex_ep.model.spec.Network` into Brian2
NeuronGroups (one per population) and Synapses (one per projection) whose
equations and synapse code come from :mod:`cortex_ep.engines.brian.equations`.  A
*schedule* of samples — images, targets, the sign of β, whether and when to
learn — runs inside a single ``Network.run``: minibatches accumulate the local
update in the synapses and apply it at the batch's last sample.

Code-generation targets: ``cpp_standalone`` (default, fastest here),
``cython`` and ``numpy``.  In standalone mode the binary is built once per
schedule length and re-run with new data and weights through ``run_args``.
"""

from __future__ import annotations

import gc
import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...model import energy
from ...model.estimators import Estimator
from ...model.neurons import Spiking
from ...model.plasticity import Plasticity
from ...model.relaxation import Relaxation
from ...model.spec import Network
from . import equations as eq
from . import standalone
from .schedule import RULE_TABLES, Schedule, concat, make_schedule  # noqa: F401
from .targets import DEFAULT_TARGET, TARGETS  # noqa: F401  (re-exported)


@dataclass
class RunResult:
    """What one engine run returns.

    Attributes
    ----------
    free_output : (n, N_out) array, output state at the end of each free phase
    W, b : the weights and biases after the run
    states : dict population -> (n, steps_per_sample, N) array of ``s`` after
        every Euler step, only when recorded; with spiking neurons also
        ``("spikes", population) -> (sample, step, unit)`` integer arrays, one
        entry per spike (``step`` within the sample)
    """

    free_output: np.ndarray
    W: dict
    b: dict
    states: dict | None = None


class BrianEngine:
    """EP in Brian2 for one network, estimator and relaxation.

    Parameters
    ----------
    net : Network
    estimator : Estimator
    relaxation : Relaxation
    target : {"cpp_standalone", "cython", "numpy"}
    build_root : path, optional
        Where standalone projects are built (default ``~/.cache/cortex_ep/brian``).
    seed : int
        Seed of Brian2's random numbers (noise).
    plasticity : Plasticity
        The phase rule (default) or the continual rule, as synapse code.
    spikes : Spiking, optional
        Spiking neurons (:mod:`cortex_ep.model.neurons`); the network then runs at
        their ``dt`` and phase lengths.  None: rate neurons.
    """

    def __init__(self, net: Network, estimator: Estimator, relaxation: Relaxation,
                 target: str = DEFAULT_TARGET, build_root=None, seed: int = 0,
                 plasticity: Plasticity = Plasticity(), spikes: Spiking | None = None):
        if target not in TARGETS:
            raise ValueError(f"unknown Brian2 target {target!r}; choose one of "
                             f"{', '.join(TARGETS)}")
        if spikes is not None:
            net, relaxation = spikes.timed(net, relaxation)
        self.spikes = spikes
        self.net, self.estimator, self.relaxation = net, estimator, relaxation
        self.plasticity = plasticity
        self.target, self.seed = target, seed
        self.build_root = Path(build_root or Path.home() / ".cache" / "cortex_ep" / "brian")
        self._built = None  # (key, objects) of the standalone project in use

    @property
    def steps_per_sample(self) -> int:
        r = self.relaxation
        n_nudged = 2 if self.estimator.name == "symmetric" else 1
        return r.free_steps + n_nudged * r.nudged_steps

    # --------------------------------------------------------- engine protocol
    def epoch(self, W, b, x_train, d_train, signs, batch_size, x_test):
        """Train on the samples in the given order, then evaluate ``x_test``.

        Both happen in one Brian2 run: the held-out samples follow the
        training samples with learning switched off.

        Returns
        -------
        W, b : updated parameters
        train_output : (n_train, N_out) free-phase outputs seen while learning
        test_output : (n_test, N_out) free-phase outputs after the epoch
        """
        n_out = self.net.output.size
        schedule = concat(
            make_schedule(x_train, d_train, self.estimator, batch_size=batch_size,
                          signs=signs),
            make_schedule(x_test, np.zeros((len(x_test), n_out)), self.estimator,
                          learn=False, signs=np.ones(len(x_test))))
        res = self.run(schedule, W, b)
        n = len(x_train)
        return res.W, res.b, res.free_output[:n], res.free_output[n:]

    def record(self, W, b, x, d, signs):
        """States after every Euler step of every phase, without learning.

        Returns a dict population -> (n, steps_per_sample, N) array.
        """
        schedule = make_schedule(x, d, self.estimator, learn=False, signs=signs)
        return self.run(schedule, W, b, record=True).states

    def get_state(self) -> dict:
        return {}  # every run re-seeds Brian2's generator with ``seed``

    def set_state(self, state: dict) -> None:
        pass

    # ------------------------------------------------------------------ run
    def run(self, schedule: Schedule, W: dict, b: dict, record: bool = False) -> RunResult:
        """Simulate (and learn from) every sample of ``schedule`` in one Brian2 run."""
        if self.target == "cpp_standalone":
            return self._run_standalone(schedule, W, b, record)
        return self._run_runtime(schedule, W, b, record)

    def _run_runtime(self, schedule, W, b, record):
        import brian2
        from brian2.devices.device import reset_device

        reset_device("runtime")
        brian2.prefs.codegen.target = self.target
        objs = self._build(schedule, W, b, record)
        objs["network"].run(schedule.n * self.steps_per_sample * objs["dt"],
                            namespace=objs["namespace"])
        return self._collect(objs, schedule.n)

    def _run_standalone(self, schedule, W, b, record):
        from brian2 import device

        key = (schedule.n, record)
        directory = self.build_root / self._project_hash(schedule.n, record)
        with standalone.locked(directory):
            if self._built is None or self._built[0] != key or not standalone.is_active(self):
                # Brian2 names objects uniquely among those alive: while the previous
                # project's objects live, the new ones get suffixed names, the generated
                # code differs from the cached build and everything recompiles
                self._built = None
                gc.collect()
                standalone.activate(directory, self)
                objs = self._build(schedule, W, b, record)
                objs["network"].run(schedule.n * self.steps_per_sample * objs["dt"],
                                    namespace=objs["namespace"])
                device.build(directory=str(directory), compile=True, run=False,
                             clean=False)
                self._built = (key, objs)
            objs = self._built[1]
            run_args = {objs["tables"][name]: np.ascontiguousarray(getattr(schedule, name), float)
                        for name in objs["tables"]}
            for key, values in self._synapse_values(W).items():
                run_args[objs["synapses"][key].w] = values
            for pop in self.net.dynamic:
                run_args[objs["groups"][pop.name].b] = np.asarray(b[pop.name], float)
            device.run(run_args=run_args)
            try:
                return self._collect(objs, schedule.n)
            finally:
                device.delete(code=False, data=False, directory=False, run_args=True,
                              force=True)

    def _synapse_values(self, W) -> dict:
        """``{key of W: the weight of every synapse of its Synapses object}``: projections
        row-major (pre, post); feedback objects run post -> pre, so ``B`` transposed;
        lateral blocks in :func:`equations.lateral_pairs` order."""
        out = {p.name: np.asarray(W[p.name], float).ravel() for p in self.net.projections}
        for proj in self.net.separate:
            key = energy.feedback_name(proj.name)
            out[key] = np.asarray(W[key], float).T.ravel()
        for pop in self.net.lateral:
            key = energy.lateral_name(pop.name)
            out[key] = np.asarray(W[key], float)[eq.lateral_pairs(pop)[2]]
        return out

    def _project_hash(self, n: int, record: bool) -> str:
        text = repr((self.net, self.estimator.name, self.relaxation, n, record,
                     self.seed, self.plasticity.rule, self.spikes, eq.__doc__))
        return f"ep_{self.net.describe()}_{hashlib.sha1(text.encode()).hexdigest()[:12]}"

    # ---------------------------------------------------------------- build
    def _build(self, schedule: Schedule, W: dict, b: dict, record: bool) -> dict:
        import brian2 as b2

        # Brian2 (and its standalone binary) would turn Ctrl-C into a quiet early
        # stop and the epoch would learn from half-relaxed states: here it ends training
        b2.prefs.core.stop_on_keyboard_interrupt = False
        net, rel, est = self.net, self.relaxation, self.estimator
        symmetric = est.name == "symmetric"
        continual, spikes = self.plasticity.continual, self.spikes
        # A sample lasts steps_per_sample · dt; in floating point the ratio can come out
        # as e.g. 28.000000000000004 and Brian2 warns that the grids are not aligned.
        # Its TimedArray lookup rounds on an 8×-finer grid, so the tables still switch
        # exactly at the sample edges (tests check S = 28 against the reference).
        b2.BrianLogger.suppress_name("timedarray")
        dt = net.dt * b2.ms
        sample_dt = self.steps_per_sample * dt
        clock = b2.Clock(dt=dt, name="ep_clock")
        b2.seed(self.seed)
        decays = energy.weight_decay_factors(net)
        # Kolen–Pollack decays at the batch end (the continual rule has no batch-end
        # event of its own otherwise), by lr · λ times the epoch's rate factor
        table_names = RULE_TABLES[self.plasticity.rule] + (
            ("apply_scale",) if continual and decays else ()) + (
            ("decay_scale",) if decays else ())
        tables = {name: b2.TimedArray(getattr(schedule, name), dt=sample_dt, name=name)
                  for name in table_names}
        # Synapses own an internal variable ``targets``: the table is ``target_table``
        namespace = {("target_table" if k == "targets" else k): v for k, v in tables.items()}
        namespace.update(
            tau=net.tau * b2.ms, sigma=rel.noise, beta=abs(est.beta) * np.sign(est.beta),
            steps_per_sample=self.steps_per_sample, T_free=rel.free_steps,
            T_nudge=rel.nudged_steps,
            # the continual rule learns in the last nudged phase (+β)
            T_learn=rel.free_steps + (rel.nudged_steps if symmetric else 0))
        for proj in net.projections:
            namespace[f"lr_{proj.name}"] = proj.lr
            if eq.decay_name(proj):
                namespace[eq.decay_name(proj)] = proj.lr * proj.decay
        for pop in net.dynamic:
            namespace[f"lr_bias_{pop.name}"] = net.bias_lr(pop.name)
        for pop in net.lateral:
            namespace[f"lr_lateral_{pop.name}"] = pop.lateral_lr
        if spikes:
            units = {"": 1, "ms": b2.ms, "Hz": b2.Hz, "1/sqrt(ms)": 1 / np.sqrt(b2.ms)}
            namespace.update({name: value * units[unit]
                              for name, (value, unit) in spikes.constants().items()})

        groups = {}
        inp = net.input
        input_events = eq.input_events(continual)
        groups[inp.name] = b2.NeuronGroup(
            inp.size, eq.input_equations(rel.activation, continual), events=input_events,
            clock=clock, name=inp.name, namespace=namespace)
        # the input current of the new sample must exist before its first step
        groups[inp.name].set_event_schedule("present", when="start", order=1)
        if continual:
            groups[inp.name].run_on_event("present", f"{eq.HELD_INPUT_RATE} = r",
                                          when="start", order=2)
        for event in input_events:
            if event != "present":
                groups[inp.name].set_event_schedule(event, when="thresholds")
        slots = {"free_end": "after_thresholds", "pos_end": "after_thresholds",
                 "neg_end": "after_thresholds", "learn": "synapses", "plastic": "synapses",
                 "learn_start": "after_thresholds", "apply": "after_synapses",
                 "window_start": "after_thresholds",
                 "finish": "resets"}
        firing = {}
        if spikes:
            firing = dict(threshold=spikes.threshold_code, reset=spikes.reset,
                          refractory=(spikes.refractory_period_ms * b2.ms
                                      if spikes.refractory_period_ms > 0 else False))
        for pop in net.dynamic:
            events = eq.population_events(symmetric, continual, spikes, bool(decays))
            group = b2.NeuronGroup(
                pop.size, eq.population_equations(net, pop, rel.activation, rel.noise > 0,
                                                  continual, continual and symmetric, spikes),
                method=eq.projected_euler, events=events, **firing,
                clock=clock, name=pop.name, namespace=namespace)
            for event in events:
                # conditions are checked before any event code runs
                group.set_event_schedule(event, when="thresholds")
            if spikes:
                # the trace jumps before anything reads it: plasticity sees this step's spikes
                group.resetter["spike"].when, group.resetter["spike"].order = \
                    "after_thresholds", -1
            for event, code in eq.population_event_code(net, pop, symmetric,
                                                        continual, spikes).items():
                # a read window opens before this step's spike is counted
                group.run_on_event(event, code, when=slots[event],
                                   order=-2 if event == "window_start" else 0)
            if continual:
                # the one-step trace: the rate this step ended with, for the next one
                group.run_regularly(f"{eq.previous(spikes)} = {eq.seen(spikes)}", when="end",
                                    name=f"{pop.name}_rate_trace")
            group.b = b[pop.name]
            groups[pop.name] = group
        values = self._synapse_values(W)
        synapses = {}

        def add_synapses(key, source, target, model, code, name, **connect):
            code, back = code if isinstance(code, tuple) else (code, {})
            events = {e: e for e in [*code, *back]}
            events.update({e: "spike" for e in ("spike", "spike_back") if e in events})
            # fixed feedback synapses only carry their current: no event at all
            syn = b2.Synapses(source, target, model=model, on_pre=code or None,
                              on_post=back or None, on_event=events, clock=clock,
                              name=name,
                              namespace=namespace)
            syn.connect(**connect)
            for pathway in syn._pathways:
                if pathway.event == "present":
                    pathway.when, pathway.order = "start", 2
                elif pathway.event == "apply":
                    pathway.when = "after_synapses"
            syn.w = values[key]
            synapses[key] = syn

        for proj in net.projections:
            add_synapses(proj.name, groups[proj.pre], groups[proj.post],
                         eq.synapse_model(net, proj, continual, spikes),
                         eq.synapse_event_code(net, proj, continual, spikes), f"syn_{proj.name}")
        for proj in net.separate:
            add_synapses(energy.feedback_name(proj.name), groups[proj.post],
                         groups[proj.pre], eq.feedback_synapse_model(proj, continual, spikes),
                         eq.synapse_event_code(net, proj, continual, spikes, feedback=True),
                         f"syn_feedback_{proj.name}")
        for pop in net.lateral:
            pre, post, _ = eq.lateral_pairs(pop)
            add_synapses(energy.lateral_name(pop.name), groups[pop.name], groups[pop.name],
                         eq.lateral_synapse_model(continual, spikes),
                         eq.lateral_synapse_event_code(pop, continual, spikes),
                         f"syn_lateral_{pop.name}", i=pre, j=post)
        out = net.output
        monitor = b2.EventMonitor(groups[out.name], "free_end", variables=["s"],
                                  name="free_output_monitor")
        objects = [*groups.values(), *synapses.values(), monitor]
        state_monitors = {}
        if record:
            for pop in net.dynamic:
                state_monitors[pop.name] = b2.StateMonitor(
                    groups[pop.name], "s", record=True, when="after_groups", order=10,
                    name=f"trace_{pop.name}")
            objects += list(state_monitors.values())
            if spikes:
                spike_monitors = {pop.name: b2.SpikeMonitor(groups[pop.name],
                                                            name=f"spikes_{pop.name}")
                                  for pop in net.dynamic}
                objects += list(spike_monitors.values())
                state_monitors.update({("spikes", k): m for k, m in spike_monitors.items()})
        network = b2.Network(*objects, name="ep_network")
        return {"network": network, "groups": groups, "synapses": synapses,
                "monitor": monitor, "state_monitors": state_monitors, "tables": tables,
                "namespace": namespace, "dt": dt}

    def _collect(self, objs: dict, n: int) -> RunResult:
        net = self.net
        mon = objs["monitor"]
        free = np.full((n, net.output.size), np.nan)
        steps = np.round(np.asarray(mon.t / objs["dt"])).astype(np.int64)
        free[steps // self.steps_per_sample, np.asarray(mon.i)] = np.asarray(mon.s)
        W = {p.name: np.array(objs["synapses"][p.name].w[:]).reshape(
            net[p.pre].size, net[p.post].size) for p in net.projections}
        b = {p.name: np.array(objs["groups"][p.name].b[:]) for p in net.dynamic}
        for pop in net.lateral:
            key = energy.lateral_name(pop.name)
            blocks = np.zeros((pop.n_columns, pop.column_size, pop.column_size))
            blocks[eq.lateral_pairs(pop)[2]] = np.asarray(objs["synapses"][key].w[:])
            W[key] = blocks
        for proj in net.separate:
            key = energy.feedback_name(proj.name)
            W[key] = np.array(objs["synapses"][key].w[:]).reshape(
                net[proj.post].size, net[proj.pre].size).T.copy()
        states = None
        if objs["state_monitors"]:
            states = {}
            for name, m in objs["state_monitors"].items():
                if isinstance(name, tuple):  # spikes: (sample, step within it, unit)
                    step = np.round(np.asarray(m.t / objs["dt"])).astype(np.int64)
                    states[name] = np.stack([step // self.steps_per_sample,
                                             step % self.steps_per_sample,
                                             np.asarray(m.i, np.int64)], axis=1)
                else:
                    states[name] = np.asarray(m.s).T.reshape(n, self.steps_per_sample, -1)
        return RunResult(free, W, b, states)
