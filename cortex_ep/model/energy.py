"""The single mathematical reference: rho, E, C, F and the projected dynamics.

Notation (the docs' model page): states ``s`` are dicts ``{population: array (batch, N)}``,
weights ``W`` dicts ``{projection.name: array (N_pre, N_post)}``, biases ``b``
dicts ``{population: array (N,)}``.  The input population is clamped, so it
carries no bias and no ``½‖s‖²`` term.  A population with lateral in-column
weights adds ``W[lateral_name(pop)]``, an array ``(C, K, K)`` of C symmetric
blocks with zero diagonals (C columns of K units).  The energy, the cost and
their sum::

    E(s) = ½ Σ_{l≥1} ‖s_l‖² − Σ_proj ρ(s_pre)ᵀ W ρ(s_post) − Σ_{l≥1} b_lᵀ ρ(s_l)
           − ½ Σ_lateral Σ_c ρ(s_l,c)ᵀ L_c ρ(s_l,c)
    C(s) = ½ ‖s_L − d‖²
    F(s) = E(s) + β C(s)

Every engine integrates ``τ ds/dt = −∂F/∂s`` (plus optional noise) with the
projected Euler step of :func:`euler_step`; tests compare them to this module.

With separate feedback the top-down currents use ``B`` instead of ``W``, and
the right-hand side :func:`neg_gradient` is a vector field that is no longer
the gradient of any energy: :func:`energy` refuses such networks, and what
stays meaningful is the fixed point of the flow (max |ds/dt| → 0) and its
Jacobian.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from .spec import Network


@dataclass(frozen=True)
class Activation:
    """An activation ρ with its derivative, in numpy and as Brian2 expressions.

    ``brian_rho`` and ``brian_rho_prime`` are Brian2 expression templates with
    the placeholder ``{s}`` for the state variable.
    """

    name: str
    rho: Callable[[np.ndarray], np.ndarray]
    rho_prime: Callable[[np.ndarray], np.ndarray]
    brian_rho: str
    brian_rho_prime: str


def _exp(s):
    # numpy arrays and torch tensors alike (tensors have .exp(), arrays do not)
    return s.exp() if hasattr(s, "exp") else np.exp(s)


def _hard_sigmoid(s):
    return s.clip(0.0, 1.0)


def _hard_sigmoid_prime(s):
    # adding the bool mask to 0·s keeps the array type and float dtype of s
    return s * 0.0 + ((s >= 0.0) & (s <= 1.0))


def _logistic(s):
    return 1.0 / (1.0 + _exp(-4.0 * (s - 0.5)))


def _logistic_prime(s):
    r = _logistic(s)
    return 4.0 * r * (1.0 - r)


ACTIVATIONS = {
    "hard_sigmoid": Activation("hard_sigmoid", _hard_sigmoid, _hard_sigmoid_prime,
                               "clip({s}, 0, 1)", "int({s} >= 0) * int({s} <= 1)"),
    "logistic": Activation("logistic", _logistic, _logistic_prime,
                           "1 / (1 + exp(-4 * ({s} - 0.5)))",
                           "4 * exp(-4 * ({s} - 0.5)) / (1 + exp(-4 * ({s} - 0.5)))**2"),
}


def get_activation(name: str) -> Activation:
    """Look an activation up by name (``hard_sigmoid`` or ``logistic``)."""
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; choose one of "
                         f"{', '.join(ACTIVATIONS)}") from None


def rho(s, activation: str = "hard_sigmoid"):
    return get_activation(activation).rho(s)


def rho_prime(s, activation: str = "hard_sigmoid"):
    return get_activation(activation).rho_prime(s)


# ------------------------------------------------------------ lateral weights
def lateral_name(population: str) -> str:
    """Key of a population's lateral weights in ``W`` (a self-projection cannot
    exist, so the name is free)."""
    return f"{population}_{population}"


def feedback_name(projection: str) -> str:
    """Key of a projection's separate top-down matrix ``B`` in ``W``."""
    return f"{projection}_feedback"


def top_down(proj, W: dict):
    """The matrix that carries ``proj``'s top-down current: ``B`` if separate, else ``W``."""
    return W[feedback_name(proj.name) if proj.separate else proj.name]


def weight_names(net: Network) -> list[str]:
    """Keys of ``W``: the projections, the lateral blocks, then the feedback matrices."""
    return ([p.name for p in net.projections] + [lateral_name(p.name) for p in net.lateral]
            + [feedback_name(p.name) for p in net.separate])


def param_label(key: str) -> str:
    """How a key of ``W`` is named in files and tables: ``W_<proj>``, lateral
    ``W_<pop>_<pop>``, feedback ``B_<proj>``."""
    suffix = "_feedback"
    return f"B_{key[:-len(suffix)]}" if key.endswith(suffix) else f"W_{key}"


def weight_learning_rates(net: Network) -> dict:
    """Learning rate of every entry of ``W``: projections' ``lr`` (their feedback
    matrices' too, 0 where ``fixed``), lateral ``lateral_lr``."""
    rates = {p.name: p.lr for p in net.projections}
    rates.update({lateral_name(p.name): p.lateral_lr for p in net.lateral})
    rates.update({feedback_name(p.name): 0.0 if p.feedback_learning == "fixed" else p.lr
                  for p in net.separate})
    return rates


def weight_decay_factors(net: Network) -> dict:
    """``{key of W: 1 − lr · λ}`` for the matrices that decay at the end of every
    minibatch: both ``W`` and ``B`` of a Kolen–Pollack projection."""
    factors = {}
    for p in net.separate:
        if p.feedback_learning == "kolen-pollack":
            factors[p.name] = factors[feedback_name(p.name)] = 1.0 - p.lr * p.decay
    return factors


def lateral_current(rate, L):
    """``L ρ`` per column: rates ``(batch, C·K)``, blocks ``(C, K, K)`` -> ``(batch, C·K)``.

    ``L`` is symmetric, so this is also ``−∂/∂ρ`` of ``−½ ρᵀ L ρ``.
    """
    batch, (n_col, k) = rate.shape[0], L.shape[:2]
    by_column = rate.reshape(batch, n_col, k).swapaxes(0, 1)     # (C, batch, K)
    return (by_column @ L).swapaxes(0, 1).reshape(batch, n_col * k)


def lateral_outer(rate, factors, n_columns: int):
    """Σ_batch factor · ρ_c ρ_cᵀ per column with zero diagonal, ``(C, K, K)``.

    Symmetrised as ``½(G + Gᵀ)`` so that rounding keeps ``L`` exactly symmetric.
    """
    batch, n = rate.shape
    k = n // n_columns
    col = rate.reshape(batch, n_columns, k).swapaxes(0, 1)           # (C, batch, K)
    g = (col * factors[None, :, None]).swapaxes(1, 2) @ col          # (C, K, K)
    g = 0.5 * (g + g.swapaxes(1, 2))
    diagonal = list(range(k))
    g[:, diagonal, diagonal] = 0.0
    return g


def symmetrize_lateral(net: Network, grads: dict) -> dict:
    """Gradients w.r.t. independent matrix entries -> w.r.t. the symmetric lateral
    weights: ``L_ij`` and ``L_ji`` are one parameter, so their gradients add."""
    out = dict(grads)
    for pop in net.lateral:
        key = lateral_name(pop.name)
        g = grads[key] + grads[key].swapaxes(1, 2)
        diagonal = list(range(g.shape[-1]))
        g[:, diagonal, diagonal] = 0.0
        out[key] = g
    return out


# --------------------------------------------------------------------- energy
# Written with array methods and operators only, so that numpy arrays and torch
# tensors (with autograd) go through the very same formulas.
def energy(net: Network, s: dict, W: dict, b: dict, activation: str = "hard_sigmoid"):
    """E(s) per sample, shape ``(batch,)``.

    Raises ``ValueError`` for networks with separate feedback: their dynamics
    are not the gradient of an energy.
    """
    if net.separate:
        raise ValueError(f"network {net.name!r} has separate feedback "
                         f"({', '.join(p.name for p in net.separate)}): its dynamics are a "
                         "vector field with no energy; use its fixed point and Jacobian "
                         "(cortex_ep.engines.twin.truth handles both cases)")
    act = get_activation(activation)
    r = {name: act.rho(v) for name, v in s.items()}
    e = 0.0
    for pop in net.dynamic:
        e = e + 0.5 * (s[pop.name] ** 2).sum(-1) - r[pop.name] @ b[pop.name]
    for proj in net.projections:
        e = e - ((r[proj.pre] @ W[proj.name]) * r[proj.post]).sum(-1)
    for pop in net.lateral:
        rate = r[pop.name]
        e = e - 0.5 * (lateral_current(rate, W[lateral_name(pop.name)]) * rate).sum(-1)
    return e


def cost(net: Network, s: dict, target):
    """C(s) = ½‖s_L − d‖² per sample, shape ``(batch,)``; ``target`` is one-hot."""
    return 0.5 * ((s[net.output.name] - target) ** 2).sum(-1)


def _per_sample(beta):
    """β as a scalar or a ``(batch, 1)`` column."""
    return beta[:, None] if getattr(beta, "ndim", 0) == 1 else beta


def _is_zero(beta) -> bool:
    return getattr(beta, "ndim", 0) == 0 and float(beta) == 0.0


def total_energy(net, s, W, b, target, beta, activation="hard_sigmoid"):
    """F(s) = E(s) + β C(s) per sample, shape ``(batch,)``; ``beta`` scalar or ``(batch,)``."""
    return energy(net, s, W, b, activation) + beta * cost(net, s, target)


def input_currents(net: Network, x, W: dict, activation="hard_sigmoid") -> dict:
    """Currents from the clamped input, ``{population: ρ(x) W}``: constant while x is
    clamped, so engines compute them once per sample."""
    r = get_activation(activation).rho(x)
    out = {}
    for proj in net.projections:
        if proj.pre == net.input.name:
            out[proj.post] = out.get(proj.post, 0.0) + r @ W[proj.name]
    return out


def drive(net: Network, s: dict, W: dict, b: dict, activation="hard_sigmoid", fixed=None):
    """Synaptic plus bias input of every dynamic population (before ρ').

    ``fixed`` takes :func:`input_currents` computed beforehand.
    """
    act = get_activation(activation)
    fixed = input_currents(net, s[net.input.name], W, activation) if fixed is None else fixed
    r = {name: act.rho(v) for name, v in s.items() if name != net.input.name}
    out = {pop.name: b[pop.name] + fixed.get(pop.name, 0.0) for pop in net.dynamic}
    for proj in net.projections:
        if proj.pre != net.input.name:
            out[proj.post] = out[proj.post] + r[proj.pre] @ W[proj.name]
            out[proj.pre] = out[proj.pre] + r[proj.post] @ top_down(proj, W).T
    for pop in net.lateral:
        out[pop.name] = out[pop.name] + lateral_current(r[pop.name],
                                                        W[lateral_name(pop.name)])
    return out


def neg_gradient(net, s, W, b, target=None, beta=0.0, activation="hard_sigmoid",
                 fixed=None):
    """−∂F/∂s_l for every dynamic population, each of shape ``(batch, N_l)``."""
    act = get_activation(activation)
    inputs = drive(net, s, W, b, activation, fixed)
    grad = {name: -s[name] + act.rho_prime(s[name]) * inputs[name] for name in inputs}
    if not _is_zero(beta):
        y = net.output.name
        grad[y] = grad[y] - _per_sample(beta) * (s[y] - target)
    return grad


def euler_step(net, s, W, b, target=None, beta=0.0, activation="hard_sigmoid",
               noise=0.0, rng=None, fixed=None, h=None):
    """One projected Euler step of ``τ ds/dt = −∂F/∂s + σ√τ ξ``, clipped to [0, 1].

    All populations are updated synchronously from the same state.  Returns a
    new state dict (the input entry is shared, not copied).  ``rng`` draws the
    noise: a numpy Generator, or for tensors a callable ``like -> N(0, 1)``.
    ``h`` is the step in units of τ (default: the network's dt/τ).
    """
    h = net.dt / net.tau if h is None else h
    grad = neg_gradient(net, s, W, b, target, beta, activation, fixed)
    new = dict(s)
    for name, g in grad.items():
        step = s[name] + h * g
        if noise:
            xi = rng(step) if callable(rng) else rng.standard_normal(step.shape)
            step = step + noise * np.sqrt(h) * xi
        new[name] = step.clip(0.0, 1.0)
    return new


# ---------------------------------------------------------------- parameters
def init_params(net: Network, seed: int = 0, dtype=np.float64):
    """Glorot-uniform weights (times each projection's ``init_gain``) and zero biases.

    Lateral weights start at 0: columns begin uncoupled and EP shapes them.
    Separate feedback matrices start as a copy of ``W`` (``transpose``) or as
    their own draw (``random``), made after every other draw so that the forward
    weights are those of the tied network with the same seed.

    Returns
    -------
    W : dict of (N_pre, N_post) arrays, and (C, K, K) lateral blocks
    b : dict of (N,) arrays, one per hidden / output population
    """
    rng = np.random.default_rng(seed)
    W, b = {}, {}
    for proj in net.projections:
        n_in, n_out = net[proj.pre].size, net[proj.post].size
        limit = proj.init_gain * np.sqrt(6.0 / (n_in + n_out))
        W[proj.name] = rng.uniform(-limit, limit, size=(n_in, n_out)).astype(dtype)
    for pop in net.lateral:
        W[lateral_name(pop.name)] = np.zeros((pop.n_columns, pop.column_size,
                                              pop.column_size), dtype=dtype)
    for pop in net.dynamic:
        b[pop.name] = np.zeros(pop.size, dtype=dtype)
    for proj in net.separate:
        if proj.feedback_init == "transpose":
            B = W[proj.name].copy()
        else:
            n_in, n_out = net[proj.pre].size, net[proj.post].size
            limit = proj.init_gain * np.sqrt(6.0 / (n_in + n_out))
            B = rng.uniform(-limit, limit, size=(n_in, n_out)).astype(dtype)
        W[feedback_name(proj.name)] = B
    return W, b
