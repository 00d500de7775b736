"""Network descriptions: populations, projections and the validated network.

A network is written in a script as a handful of :class:`Population` and
:class:`Projection` objects gathered in a :class:`Network`: pure data that the
engines turn into simulations.  Every mistake that can be detected from the
description alone is reported by :meth:`Network.validate`, naming the fix.

Example
-------
>>> from cortex_ep.model.spec import Network, Population, Projection
>>> net = Network(
...     populations=(Population("x", 784, "input"),
...                  Population("h", 500, "hidden"),
...                  Population("y", 10, "output")),
...     projections=(Projection("x", "h"), Projection("h", "y")),  # validated defaults
... )
>>> net.layer_sizes
(784, 500, 10)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Literal

from .defaults import inherit_defaults

ROLES = ("input", "hidden", "output")
Role = Literal["input", "hidden", "output"]
#: how a projection carries the top-down current (the docs' model page, "separate feedback")
FEEDBACK_MODES = ("tied", "separate")
#: how a separate feedback matrix starts: the forward weights, or its own random draw
FEEDBACK_INITS = ("transpose", "random")
#: how a separate feedback matrix learns (the docs' model page, "how feedback learns")
FEEDBACK_LEARNING = ("shared", "fixed", "kolen-pollack")


class SpecError(ValueError):
    """A network description that cannot be simulated; the message names the fix."""


@dataclass(frozen=True)
class Population:
    """A group of leaky rate neurons.

    Parameters
    ----------
    name : str
        Identifier used by projections, recordings (``layer`` coordinate) and
        weight files.  Letters, digits and underscores.
    size : int
        Number of units.
    role : {"input", "hidden", "output"}
        ``input`` is clamped to the data, ``output`` is nudged toward the
        target, ``hidden`` relaxes freely.
    columns : int, optional
        Lay the units out as this many cortical columns of ``size // columns``
        units each (unit ``u`` belongs to column ``u // (size // columns)``).
    lateral_lr : float, optional
        Hidden populations only.  When given, units of the same column are
        coupled by symmetric lateral weights ``L`` (no self-coupling; energy
        term ``-½ ρ(s)ᵀ L ρ(s)``), starting at 0 and learned by the same local
        EP rule at this rate (0 keeps them fixed).  Without columns the whole
        population is one column.
    """

    name: str
    size: int
    role: Role
    columns: int | None = None
    lateral_lr: float | None = None

    @property
    def n_columns(self) -> int:
        return self.columns or 1

    @property
    def lateral(self) -> bool:
        """Whether units of a column are coupled to each other."""
        return self.lateral_lr is not None

    @property
    def column_size(self) -> int:
        return self.size // (self.columns or 1)

    def column_of_units(self) -> list[int]:
        """Column index of every unit, shape ``(size,)``; all 0 without columns."""
        return [u // self.column_size for u in range(self.size)]


@dataclass(frozen=True)
class Projection:
    """Coupling between two populations: bottom-up through ``W``, top-down through
    ``W`` itself (tied) or through a second matrix ``B`` (separate).

    Tied, the energy term is ``-rho(s_pre)^T W rho(s_post)`` with ``W`` of shape
    ``(pre.size, post.size)``; currents flow both ways through the same ``W``.
    Separate, the bottom-up current is ``I_post = W^T rho(s_pre)`` and the
    top-down one ``I_pre = B rho(s_post)`` with ``B`` of ``W``'s shape (tied is
    ``B = W``): the dynamics are then a vector field, not an energy gradient
    (Scellier et al. 2018).  Both matrices learn by the same local rule.

    Parameters
    ----------
    pre, post : str
        Population names; ``pre`` is the one closer to the input.
    lr : float, optional
        Rate of ``W`` and of ``post``'s biases; unset, the :class:`Network` fills
        in the validated default (:mod:`cortex_ep.model.defaults`: 0.4 into hidden, 0.05
        into the output, less from populations larger than 784 / 500 units).
    init_gain : float, optional
        Scale of the Glorot-uniform initial weights; unset, the validated 0.5.
    feedback : {"tied", "separate"}
        Whether the top-down current uses ``W`` (tied, weight transport) or its
        own matrix ``B`` (separate).  Not for projections from the input, which
        is clamped and receives no current.
    feedback_init : {"transpose", "random"}
        With ``separate``: ``B`` starts equal to ``W`` (``transpose``) or as an
        independent Glorot draw of the same scale (``random``).
    feedback_learning : {"shared", "fixed", "kolen-pollack"}
        With ``separate``: ``B`` learns by ``W``'s local rule (``shared``), never
        changes (``fixed``, feedback alignment), or learns by ``W``'s rule while
        ``W`` and ``B`` both decay (``kolen-pollack``): at the end of every
        minibatch, after its updates, both are multiplied by ``1 − lr · λ``, so
        that ``B − W`` shrinks by that factor per batch whatever ``B`` started as.
    feedback_decay : float, optional
        λ of ``kolen-pollack`` (per unit learning rate, per batch); unset, the
        validated default (:mod:`cortex_ep.model.defaults`).  Only with
        ``kolen-pollack``; ``lr · λ`` must stay below 1.
    """

    pre: str
    post: str
    lr: float | None = None
    init_gain: float | None = None
    feedback: str = "tied"
    feedback_init: str = "transpose"
    feedback_learning: str = "shared"
    feedback_decay: float | None = None

    @property
    def name(self) -> str:
        return f"{self.pre}_{self.post}"

    @property
    def separate(self) -> bool:
        """Whether the top-down current has its own matrix ``B``."""
        return self.feedback == "separate"

    @property
    def feedback_rule(self) -> str:
        """How ``B`` learns, for files and tables: ``shared``, ``fixed`` or
        ``kolen-pollack:λ``."""
        if self.feedback_learning == "kolen-pollack":
            return f"kolen-pollack:{self.decay:g}"
        return self.feedback_learning

    @property
    def decay(self) -> float:
        """λ of the Kolen–Pollack decay; 0 for every other projection."""
        return float(self.feedback_decay or 0.0)


@dataclass(frozen=True)
class Network:
    """A validated description of an energy-based network.

    Parameters
    ----------
    populations : tuple of Population
        Exactly one ``input`` and one ``output`` population.
    projections : tuple of Projection
        Feed-forward order (``pre`` closer to the input); each pair of
        populations is coupled at most once.
    tau : float
        Membrane time constant in ms.
    dt : float
        Integration step in ms; ``dt < tau``.
    name : str
        Shown in histories and figures.
    """

    populations: tuple[Population, ...]
    projections: tuple[Projection, ...]
    tau: float = 10.0
    dt: float = 5.0
    name: str = "network"
    _by_name: dict = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        object.__setattr__(self, "populations", tuple(self.populations))
        object.__setattr__(self, "_by_name", {p.name: p for p in self.populations})
        object.__setattr__(self, "projections", tuple(  # unset lr / init_gain: defaults
            inherit_defaults(p, self._by_name) for p in self.projections))
        self.validate()

    # ------------------------------------------------------------------ checks
    def validate(self) -> None:
        """Raise :class:`SpecError` naming the first problem and its fix."""
        if not (isinstance(self.tau, (int, float)) and math.isfinite(self.tau) and self.tau > 0):
            raise SpecError(f"tau must be a positive time in ms, got {self.tau!r}; "
                            "use e.g. tau=10.0")
        if not (isinstance(self.dt, (int, float)) and math.isfinite(self.dt) and self.dt > 0):
            raise SpecError(f"dt must be a positive time in ms, got {self.dt!r}; "
                            "use e.g. dt=tau/2")
        if self.dt >= self.tau:
            raise SpecError(f"dt = {self.dt} ms is not smaller than tau = {self.tau} ms: "
                            "the Euler step overshoots the fixed point; choose dt < tau "
                            "(dt/tau = 0.5 is the tested default)")
        if not self.populations:
            raise SpecError("the network has no populations; add an input, a hidden "
                            "and an output Population")
        seen = set()
        for pop in self.populations:
            if not isinstance(pop.name, str) or not pop.name.isidentifier():
                raise SpecError(f"population name {pop.name!r} is not a valid identifier; "
                                "use letters, digits and underscores")
            if pop.name in seen:
                raise SpecError(f"two populations are named {pop.name!r}; give each a "
                                "unique name")
            seen.add(pop.name)
            if pop.role not in ROLES:
                raise SpecError(f"population {pop.name!r} has role {pop.role!r}; "
                                f"choose one of {', '.join(ROLES)}")
            if not isinstance(pop.size, int) or isinstance(pop.size, bool) or pop.size <= 0:
                raise SpecError(f"population {pop.name!r} has size {pop.size!r}; "
                                "the size must be a positive integer")
            if pop.columns is not None:
                if (not isinstance(pop.columns, int) or pop.columns <= 0
                        or pop.size % pop.columns):
                    raise SpecError(f"population {pop.name!r}: {pop.columns!r} columns do "
                                    f"not divide its {pop.size} units evenly; choose a "
                                    f"divisor of {pop.size}")
            if pop.lateral:
                if pop.role != "hidden":
                    raise SpecError(f"population {pop.name!r} ({pop.role}) has lateral "
                                    "weights; only hidden populations can: remove "
                                    "lateral_lr")
                if not (isinstance(pop.lateral_lr, (int, float)) and
                        math.isfinite(pop.lateral_lr) and pop.lateral_lr >= 0):
                    raise SpecError(f"population {pop.name!r} has lateral_lr "
                                    f"{pop.lateral_lr!r}; use a finite value >= 0")
                if pop.column_size < 2:
                    raise SpecError(f"population {pop.name!r} has columns of one unit: "
                                    "lateral weights need at least two units per column "
                                    "(there is no self-coupling); use fewer columns")
        for role in ("input", "output"):
            n = sum(p.role == role for p in self.populations)
            if n != 1:
                raise SpecError(f"the network needs exactly one {role} population, it has "
                                f"{n}; set role='{role}' on exactly one Population")
        pairs = set()
        for proj in self.projections:
            for end in (proj.pre, proj.post):
                if end not in self._by_name:
                    raise SpecError(f"projection {proj.pre} -> {proj.post} names unknown "
                                    f"population {end!r}; known: "
                                    f"{', '.join(self._by_name)}")
            if proj.pre == proj.post:
                raise SpecError(f"projection {proj.pre} -> {proj.post} couples a "
                                "population to itself; the energy has no self-coupling "
                                "term: remove it")
            if self._by_name[proj.post].role == "input":
                raise SpecError(f"projection {proj.pre} -> {proj.post} targets the input "
                                "population, which is clamped to the data; reverse it "
                                f"({proj.post} -> {proj.pre})")
            key = frozenset((proj.pre, proj.post))
            if key in pairs:
                raise SpecError(f"populations {proj.pre} and {proj.post} are coupled twice; "
                                "one symmetric weight already carries currents both "
                                "ways: keep a single projection")
            pairs.add(key)
            if not (isinstance(proj.lr, (int, float)) and math.isfinite(proj.lr)
                    and proj.lr >= 0):
                raise SpecError(f"projection {proj.name} has learning rate {proj.lr!r}; "
                                "use a finite value >= 0")
            if not (isinstance(proj.init_gain, (int, float)) and math.isfinite(proj.init_gain)
                    and proj.init_gain > 0):
                raise SpecError(f"projection {proj.name} has init_gain {proj.init_gain!r}; "
                                "use a finite value > 0")
            if proj.feedback not in FEEDBACK_MODES:
                raise SpecError(f"projection {proj.name} has feedback {proj.feedback!r}; "
                                f"choose one of {', '.join(FEEDBACK_MODES)}")
            if proj.feedback_init not in FEEDBACK_INITS:
                raise SpecError(f"projection {proj.name} has feedback_init "
                                f"{proj.feedback_init!r}; choose one of "
                                f"{', '.join(FEEDBACK_INITS)}")
            self._check_feedback_learning(proj)
            if proj.separate and self._by_name[proj.pre].role == "input":
                raise SpecError(f"projection {proj.name} comes from the clamped input, which "
                                "receives no top-down current: a separate feedback matrix "
                                "would never act; keep feedback='tied' there")
        self._check_order()

    @staticmethod
    def _check_feedback_learning(proj: Projection) -> None:
        if proj.feedback_learning not in FEEDBACK_LEARNING:
            raise SpecError(f"projection {proj.name} has feedback_learning "
                            f"{proj.feedback_learning!r}; choose one of "
                            f"{', '.join(FEEDBACK_LEARNING)}")
        if not proj.separate and proj.feedback_learning != "shared":
            raise SpecError(f"projection {proj.name} has tied feedback, which has no "
                            f"matrix of its own to learn {proj.feedback_learning!r}: set "
                            "feedback='separate' (--feedback separate), or drop "
                            "feedback_learning")
        if proj.feedback_decay is None:
            return
        if proj.feedback_learning != "kolen-pollack":
            raise SpecError(f"projection {proj.name} has feedback_decay "
                            f"{proj.feedback_decay!r} with feedback_learning "
                            f"{proj.feedback_learning!r}; the decay λ belongs to "
                            "'kolen-pollack': choose it (--feedback-learning kolen-pollack) "
                            "or drop the decay")
        lam = proj.feedback_decay
        if (isinstance(lam, bool) or not isinstance(lam, (int, float))
                or not math.isfinite(lam) or lam < 0):
            raise SpecError(f"projection {proj.name} has feedback_decay {lam!r}; the "
                            "Kolen–Pollack decay λ must be a finite value >= 0 (e.g. 0.05)")
        if proj.lr * lam >= 1:
            raise SpecError(f"projection {proj.name}: lr · λ = {proj.lr:g} · {lam:g} >= 1 "
                            "would flip the weights' sign at every batch; choose "
                            f"λ < {1 / proj.lr:g}")

    def _check_order(self) -> None:
        order = self.order
        reached = {self.input.name}
        for name in order:
            if name in reached:
                continue
            if any(p.post == name and p.pre in reached for p in self.projections):
                reached.add(name)
        for pop in self.populations:
            if pop.name not in reached:
                raise SpecError(f"population {pop.name!r} receives no current from the "
                                "input; add a projection that connects it to the input "
                                "through the network")

    @property
    def order(self) -> tuple[str, ...]:
        """Population names from input to output (topological order of projections)."""
        incoming = {p.name: {q.pre for q in self.projections if q.post == p.name}
                    for p in self.populations}
        done: list[str] = []
        while len(done) < len(self.populations):
            ready = [n for n in incoming if n not in done and incoming[n] <= set(done)]
            if not ready:
                stuck = [n for n in incoming if n not in done]
                raise SpecError("the projections form a cycle through "
                                f"{', '.join(stuck)}; the energy couples each pair once "
                                "in feed-forward order (pre closer to the input): reverse "
                                "or remove one projection of the cycle")
            done.extend(sorted(ready, key=lambda n: [p.name for p in self.populations].index(n)))
        return tuple(done)

    # ------------------------------------------------------------------ views
    def __getitem__(self, name: str) -> Population:
        try:
            return self._by_name[name]
        except KeyError:
            raise KeyError(f"no population {name!r}; known: {', '.join(self._by_name)}") from None

    @property
    def input(self) -> Population:
        return next(p for p in self.populations if p.role == "input")

    @property
    def output(self) -> Population:
        return next(p for p in self.populations if p.role == "output")

    @property
    def dynamic(self) -> tuple[Population, ...]:
        """Hidden and output populations in input-to-output order."""
        return tuple(self[n] for n in self.order if self[n].role != "input")

    @property
    def layer_sizes(self) -> tuple[int, ...]:
        return tuple(self[n].size for n in self.order)

    @property
    def lateral(self) -> tuple[Population, ...]:
        """Populations with lateral in-column weights, input-to-output order."""
        return tuple(p for p in self.dynamic if p.lateral)

    @property
    def separate(self) -> tuple[Projection, ...]:
        """Projections whose top-down current has its own matrix ``B``."""
        return tuple(p for p in self.projections if p.separate)

    def bias_lr(self, name: str) -> float:
        """Rate of population ``name``'s biases: its first incoming projection's."""
        return next(p.lr for p in self.projections if p.post == name)

    def describe(self) -> str:
        return "-".join(str(s) for s in self.layer_sizes)


def with_learning_rates(net: Network, lrs) -> Network:
    """A copy of ``net`` with new learning rates: one value for every projection,
    or one per projection in order."""
    lrs = [float(v) for v in lrs]
    if len(lrs) == 1:
        lrs = lrs * len(net.projections)
    if len(lrs) != len(net.projections):
        raise SpecError(f"{len(lrs)} learning rates for {len(net.projections)} projections "
                        f"({', '.join(p.pre + '->' + p.post for p in net.projections)}); "
                        "give one value, or one per projection")
    projs = tuple(replace(p, lr=lr) for p, lr in zip(net.projections, lrs))
    return replace(net, projections=projs)


def with_feedback(net: Network, feedback: str, feedback_init: str = "transpose",
                  learning: str = "shared", decay: float | None = None) -> Network:
    """``net`` with this feedback mode between dynamic populations (input: tied):
    ``feedback``, ``feedback_init``, ``feedback_learning`` and ``feedback_decay``
    of :class:`Projection`."""
    projs = tuple(p if net[p.pre].role == "input" else
                  replace(p, feedback=feedback, feedback_init=feedback_init,
                          feedback_learning=learning, feedback_decay=decay)
                  for p in net.projections)
    return replace(net, projections=projs)


def with_feedback_learning(net: Network, learning: str, decay: float | None = None) -> Network:
    """``net`` whose separate feedback matrices learn by ``learning`` (with ``decay``
    λ for ``kolen-pollack``; see :class:`Projection`)."""
    if not net.separate:
        raise SpecError(f"network {net.name!r} has no separate feedback matrix to learn "
                        f"{learning!r}: add --feedback separate (feedback='separate')")
    projs = tuple(replace(p, feedback_learning=learning, feedback_decay=decay)
                  if p.separate else p for p in net.projections)
    return replace(net, projections=projs)


def layered(sizes, lrs, *, tau: float = 10.0, dt: float = 5.0, name: str | None = None,
            columns: dict[int, int] | None = None, init_gain: float | None = None,
            lateral_lr: dict[int, float] | None = None, feedback: str = "tied",
            feedback_init: str = "transpose", feedback_learning: str = "shared",
            feedback_decay: float | None = None) -> Network:
    """A chain ``x -> h1 -> … -> y`` with the given layer sizes and learning rates.

    Parameters
    ----------
    sizes : sequence of int
        Layer sizes from input to output, at least two.
    lrs : sequence of float
        One learning rate per projection (``len(sizes) - 1``).
    columns : dict, optional
        ``{layer_index: n_columns}`` for hidden layers laid out as columns.
    init_gain : float, optional
        Scale of every projection's initial weights (default: the validated 0.5).
    lateral_lr : dict, optional
        ``{layer_index: rate}`` for hidden layers with lateral in-column weights.
    feedback, feedback_init, feedback_learning : str; feedback_decay : float, optional
        Feedback mode of every projection between dynamic layers (see
        :class:`Projection`); projections from the input stay tied.
    """
    sizes = list(sizes)
    lrs = list(lrs)
    if len(sizes) < 2:
        raise SpecError(f"a layered network needs at least an input and an output size, "
                        f"got {sizes}")
    if len(lrs) != len(sizes) - 1:
        raise SpecError(f"{len(sizes)} layers need {len(sizes) - 1} learning rates "
                        f"(one per projection), got {len(lrs)}")
    names = ["x"] + [f"h{i}" for i in range(1, len(sizes) - 1)] + ["y"]
    roles = ["input"] + ["hidden"] * (len(sizes) - 2) + ["output"]
    columns, lateral_lr = columns or {}, lateral_lr or {}
    pops = tuple(Population(n, s, r, columns.get(i), lateral_lr.get(i)) for i, (n, s, r)
                 in enumerate(zip(names, sizes, roles)))
    projs = tuple(Projection(a, b, lr, init_gain) for a, b, lr in zip(names, names[1:], lrs))
    net = Network(pops, projs, tau=tau, dt=dt, name=name or "-".join(str(s) for s in sizes))
    if feedback == "tied" and feedback_learning == "shared" and feedback_decay is None:
        return net
    return with_feedback(net, feedback, feedback_init, feedback_learning, feedback_decay)
