"""The continual rule against the exact gradient, as a function of the learning rate.

Ernoult et al. (2020) check C-EP by its "gradient descent updates" property:
with small enough learning rate and β, the weight changes made during the
nudged phase follow the gradient of the loss (BPTT through the free phase, at
the weights of the start).  Here, for one batch at fixed starting weights:

- the exact gradient ``g = dL/dθ`` of ``L = mean C(s⁰)`` at the free fixed point
  (implicit differentiation, :mod:`cortex_ep.engines.twin.truth`; for a converged free
  phase it equals BPTT's);
- the batch run under the continual rule exactly as the engines train
  (samples in turn, each free phase relaxed to a tolerance, ``nudged_steps``
  learning steps, every parameter at the same rate ``η``), giving the
  estimate ``ĝ = −Δθ / η``;
- the ``η → 0`` limit of the same phases, in which the weights stay put
  during the phase: the phase rule's estimate from the same states.

For small ``η`` the continual cosine approaches that limit; as ``η`` grows
the weights move during the phase and the estimate drifts from the gradient.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch
import xarray as xr

from ..engines.twin import truth
from ..engines.twin.relax import to_tensors
from ..model import dynamics, energy
from ..model.estimators import Estimator, ep_update
from ..model.plasticity import continual_batches
from ..model.spec import Network, with_feedback_learning, with_learning_rates
from .gradcheck import compare, flat_params, param_names


def with_one_rate(net: Network, lr: float) -> Network:
    """``net`` with every learning rate (weights, biases, lateral weights) set to ``lr``,
    and separate feedback learning by the shared rule: the check measures the rule's
    estimate for every matrix; keeping ``B`` fixed or decaying it is not part of it."""
    if net.separate:
        net = with_feedback_learning(net, "shared")
    net = with_learning_rates(net, [lr])
    pops = tuple(replace(p, lateral_lr=lr) if p.lateral else p for p in net.populations)
    return replace(net, populations=pops)


def _limit_estimate(net, x, d, W, b, free, estimator, nudged_steps, activation) -> dict:
    """``ĝ`` of the continual rule's phases with the weights held fixed (η → 0)."""
    act = energy.get_activation(activation)
    fixed = energy.input_currents(net, x, W, activation)
    start = free
    if estimator.name == "symmetric":
        start = dynamics.relax(net, free, W, b, nudged_steps, d, -estimator.beta, activation,
                               fixed=fixed)
    end = dynamics.relax(net, start, W, b, nudged_steps, d, estimator.beta, activation,
                         fixed=fixed)
    dW, db = ep_update(net, {k: act.rho(v) for k, v in end.items()},
                       {k: act.rho(v) for k, v in start.items()},
                       estimator.factors(np.ones(len(x))))
    return {k: -v for k, v in flat_params(dW, db).items()}


def continual_gradcheck(net: Network, x, d, W: dict, b: dict, lrs, betas,
                        estimator: str = "one-sided", nudged_steps: int = 200,
                        activation: str = "hard_sigmoid", tol: float = 1e-13,
                        max_steps: int = 50_000, progress=None) -> xr.Dataset:
    """Cosine and relative error of the continual update to the exact gradient.

    Parameters
    ----------
    x : (batch, N_in) array; d : (batch, N_out) one-hot array
    W, b : dicts of numpy arrays, the weights at the start of the batch
    lrs : sequence of float > 0
        Learning rates ``η`` (one for every parameter).
    betas : sequence of float > 0
    estimator : {"one-sided", "symmetric"}
    nudged_steps : int
        Learning steps per sample (and steps of the −β phase for symmetric).

    Returns
    -------
    xr.Dataset with ``cosine``, ``rel_error`` over (``lr``, ``beta``, ``param``)
    and ``limit_cosine``, ``limit_rel_error`` over (``beta``, ``param``): the
    η → 0 limit (the phase rule on the same phases).
    """
    x, d = np.asarray(x, np.float64), np.asarray(d, np.float64)
    W = {k: np.asarray(v, np.float64) for k, v in W.items()}
    b = {k: np.asarray(v, np.float64) for k, v in b.items()}
    free = dynamics.relax_to_tolerance(net, dynamics.zero_state(net, x), W, b, tol,
                                       max_steps, activation=activation)
    t64 = {k: torch.as_tensor(v) for k, v in free.state.items()}
    g = truth.implicit_gradient(net, t64[net.input.name], torch.as_tensor(d),
                                to_tensors(W, "cpu", torch.float64),
                                to_tensors(b, "cpu", torch.float64), activation,
                                fixed_point=dynamics.Relaxed(t64, free.steps, free.residual))
    true = {k: v.numpy() for k, v in flat_params(g.W, g.b).items()}
    names = param_names(net)
    cos = np.full((len(lrs), len(betas), len(names)), np.nan)
    rel = np.full_like(cos, np.nan)
    limit_cos = np.full((len(betas), len(names)), np.nan)
    limit_rel = np.full_like(limit_cos, np.nan)
    for j, beta in enumerate(betas):
        est = Estimator(estimator, float(beta))
        limit = _limit_estimate(net, x, d, W, b, free.state, est, nudged_steps, activation)
        for k, name in enumerate(names):
            limit_cos[j, k], limit_rel[j, k], _ = compare(limit[name], true[name])
        for i, lr in enumerate(lrs):
            rated = with_one_rate(net, float(lr))
            W1 = {k: v.copy() for k, v in W.items()}
            b1 = {k: v.copy() for k, v in b.items()}

            def free_phase(s, fixed, W1=W1, b1=b1):
                return dynamics.relax_to_tolerance(rated, s, W1, b1, tol, max_steps,
                                                   activation=activation, fixed=fixed).state

            continual_batches(rated, x, d, W1, b1, est, np.ones(len(x)), len(x),
                              nudged_steps, free_phase, activation)
            # ĝ = −Δθ / η
            moved = flat_params({k: (W[k] - W1[k]) / lr for k in W},
                          {k: (b[k] - b1[k]) / lr for k in b})
            for k, name in enumerate(names):
                cos[i, j, k], rel[i, j, k], _ = compare(moved[name], true[name])
            if progress:
                progress()
    dims = ("lr", "beta", "param")
    return xr.Dataset(
        {"cosine": (dims, cos), "rel_error": (dims, rel, {"units": "1"}),
         "limit_cosine": (dims[1:], limit_cos,
                          {"long_name": "cosine of the same phases with fixed weights "
                                        "(lr -> 0: the phase rule)"}),
         "limit_rel_error": (dims[1:], limit_rel, {"units": "1"}),
         "true_norm": ("param", [float(np.linalg.norm(true[n])) for n in names])},
        coords={"lr": np.asarray(lrs, float), "beta": np.asarray(betas, float),
                "param": names},
        attrs={"estimator": estimator, "nudged_steps": int(nudged_steps),
               "batch": len(x), "activation": activation, "network": net.describe(),
               "free_residual": float(free.residual), "tol": float(tol),
               "plasticity": "continual"})


def summarize(ds: xr.Dataset) -> str:
    """A printable table: worst-parameter cosine per learning rate and β."""
    lines = [f"continual gradcheck {ds.attrs['network']}, batch {ds.attrs['batch']}, "
             f"{ds.attrs['estimator']}, {ds.attrs['nudged_steps']} nudged steps; "
             f"free phase |ds/dt|·τ={ds.attrs['free_residual']:.1e}",
             f"{'beta':>8}{'lr':>10}{'lr/beta':>10}{'cosine min':>12}{'rel.err max':>13}"]
    for beta in ds.beta.values:
        row = ds.sel(beta=beta)
        lines.append(f"{beta:>8.3g}{'-> 0':>10}{'':>10}{float(row.limit_cosine.min()):>12.6f}"
                     f"{float(row.limit_rel_error.max()):>13.2e}")
        for lr in ds.lr.values:
            cell = row.sel(lr=lr)
            lines.append(f"{'':>8}{lr:>10.1e}{lr / beta:>10.1e}{float(cell.cosine.min()):>12.6f}"
                         f"{float(cell.rel_error.max()):>13.2e}")
    return "\n".join(lines)
