"""The single mathematical reference: rho, E, C, F and the projected dynamics.

Notation (DESIGN.md): states ``s`` are dicts ``{population: array (batch, N)}``,
weights ``W`` dicts ``{projection.name: array (N_pre, N_post)}``, biases ``b``
dicts ``{population: array (N,)}``.  The input population is clamped, so it
carries no bias and no ``½‖s‖²`` term.

    E(s) = ½ Σ_{l≥1} ‖s_l‖² − Σ_proj ρ(s_pre)ᵀ W ρ(s_post) − Σ_{l≥1} b_lᵀ ρ(s_l)
    C(s) = ½ ‖s_L − d‖²
    F(s) = E(s) + β C(s)

Every engine integrates ``τ ds/dt = −∂F/∂s`` (plus optional noise) with the
projected Euler step of :func:`euler_step`; tests compare them to this module.
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


def _hard_sigmoid(s):
    return np.clip(s, 0.0, 1.0)


def _hard_sigmoid_prime(s):
    return ((s >= 0.0) & (s <= 1.0)).astype(np.result_type(s, np.float32))


def _logistic(s):
    return 1.0 / (1.0 + np.exp(-4.0 * (s - 0.5)))


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


# --------------------------------------------------------------------- energy
def energy(net: Network, s: dict, W: dict, b: dict, activation: str = "hard_sigmoid"):
    """E(s) per sample, shape ``(batch,)``."""
    act = get_activation(activation)
    r = {name: act.rho(v) for name, v in s.items()}
    e = 0.0
    for pop in net.dynamic:
        e = e + 0.5 * np.sum(s[pop.name] ** 2, axis=-1) - r[pop.name] @ b[pop.name]
    for proj in net.projections:
        e = e - np.sum((r[proj.pre] @ W[proj.name]) * r[proj.post], axis=-1)
    return e


def cost(net: Network, s: dict, target):
    """C(s) = ½‖s_L − d‖² per sample, shape ``(batch,)``; ``target`` is one-hot."""
    return 0.5 * np.sum((s[net.output.name] - target) ** 2, axis=-1)


def total_energy(net, s, W, b, target, beta, activation="hard_sigmoid"):
    """F(s) = E(s) + β C(s) per sample, shape ``(batch,)``; ``beta`` scalar or ``(batch,)``."""
    return energy(net, s, W, b, activation) + np.asarray(beta) * cost(net, s, target)


def drive(net: Network, s: dict, W: dict, b: dict, activation="hard_sigmoid"):
    """Synaptic plus bias input of every dynamic population (before ρ')."""
    act = get_activation(activation)
    r = {name: act.rho(v) for name, v in s.items()}
    out = {pop.name: np.broadcast_to(b[pop.name], s[pop.name].shape).copy()
           for pop in net.dynamic}
    for proj in net.projections:
        out[proj.post] += r[proj.pre] @ W[proj.name]
        if proj.pre in out:
            out[proj.pre] += r[proj.post] @ W[proj.name].T
    return out


def neg_gradient(net, s, W, b, target=None, beta=0.0, activation="hard_sigmoid"):
    """−∂F/∂s_l for every dynamic population, each of shape ``(batch, N_l)``."""
    act = get_activation(activation)
    inputs = drive(net, s, W, b, activation)
    grad = {name: -s[name] + act.rho_prime(s[name]) * inputs[name] for name in inputs}
    if np.any(np.asarray(beta) != 0):
        y = net.output.name
        grad[y] = grad[y] - np.reshape(beta, (-1, 1)) * (s[y] - target)
    return grad


def euler_step(net, s, W, b, target=None, beta=0.0, activation="hard_sigmoid",
               noise=0.0, rng=None):
    """One projected Euler step of ``τ ds/dt = −∂F/∂s + σ√τ ξ``, clipped to [0, 1].

    All populations are updated synchronously from the same state.  Returns a
    new state dict (the input entry is shared, not copied).
    """
    h = net.dt / net.tau
    grad = neg_gradient(net, s, W, b, target, beta, activation)
    new = dict(s)
    for name, g in grad.items():
        step = s[name] + h * g
        if noise:
            step = step + noise * np.sqrt(h) * rng.standard_normal(step.shape)
        new[name] = np.clip(step, 0.0, 1.0)
    return new


# ---------------------------------------------------------------- parameters
def init_params(net: Network, seed: int = 0, dtype=np.float64):
    """Glorot-uniform weights (times each projection's ``init_gain``) and zero biases.

    Returns
    -------
    W : dict of (N_pre, N_post) arrays
    b : dict of (N,) arrays, one per hidden / output population
    """
    rng = np.random.default_rng(seed)
    W, b = {}, {}
    for proj in net.projections:
        n_in, n_out = net[proj.pre].size, net[proj.post].size
        limit = proj.init_gain * np.sqrt(6.0 / (n_in + n_out))
        W[proj.name] = rng.uniform(-limit, limit, size=(n_in, n_out)).astype(dtype)
    for pop in net.dynamic:
        b[pop.name] = np.zeros(pop.size, dtype=dtype)
    return W, b
