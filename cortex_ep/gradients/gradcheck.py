"""How good is the EP gradient estimate?  EP against the exact gradient.

For a network state and a batch, the free phase is relaxed to a tolerance on
|ds/dt| (noise-free) and the exact gradient of ``L = mean C(s⁰)`` is computed
by implicit differentiation (:mod:`cortex_ep.engines.twin.truth`).  Each estimator's
nudged phases are relaxed from s⁰ to the same tolerance (or, with noise, for a
fixed number of noisy steps), and its estimate ``ĝ = −ΔW`` is compared per
parameter: cosine similarity, relative error ‖ĝ − g‖/‖g‖ and sign agreement.

With the hard sigmoid, C(s⁰) is not differentiable where a unit sits on a kink
(0 or 1), and the EP estimate breaks down when a unit crosses one between the
phases; both are counted and reported.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
import xarray as xr

from ..engines.twin import truth
from ..engines.twin.relax import to_tensors
from ..model import dynamics, energy
from ..model.estimators import Estimator, ep_update
from ..model.spec import Network


def param_names(net: Network) -> list[str]:
    return ([energy.param_label(k) for k in energy.weight_names(net)]
            + [f"b_{p.name}" for p in net.dynamic])


def flat_params(W: dict, b: dict) -> dict:
    """Parameters by their labels (:func:`param_names`): weights, then biases."""
    out = {energy.param_label(k): v for k, v in W.items()}
    out.update({f"b_{k}": v for k, v in b.items()})
    return out


def compare(estimate: np.ndarray, true: np.ndarray) -> tuple[float, float, float]:
    """Cosine similarity, relative error ‖ĝ − g‖/‖g‖ and sign agreement of two gradients.

    Sign agreement counts the entries where the true gradient is non-zero.
    """
    e, t = np.ravel(estimate), np.ravel(true)
    tn = np.linalg.norm(t)
    cos = float(e @ t / max(np.linalg.norm(e) * tn, 1e-300))
    rel = float(np.linalg.norm(e - t) / max(tn, 1e-300))
    nz = t != 0
    sign = float(np.mean(np.sign(e[nz]) == np.sign(t[nz]))) if nz.any() else 1.0
    return cos, rel, sign


PRECISIONS = {"float64": np.float64, "longdouble": np.longdouble}
DEFAULT_TOL = {"float64": 1e-15, "longdouble": 1e-18}


@dataclass
class _Problem:
    """Everything the estimators of one batch share: data, the exact gradient, s⁰."""

    net: Network
    true: dict
    boundary: dict
    free: dynamics.Relaxed
    phase: Callable
    zero: dict
    x: np.ndarray
    d: np.ndarray
    dtype: type
    rng: np.random.Generator
    attrs: dict


def _prepare(net, x, d, W, b, noise, seed, activation, precision, tol, max_steps,
             noisy_steps) -> _Problem:
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; choose one of "
                         f"{', '.join(PRECISIONS)}")
    tol = DEFAULT_TOL[precision] if tol is None else tol
    dtype = PRECISIONS[precision]
    Wn = {k: np.asarray(v, dtype) for k, v in W.items()}
    bn = {k: np.asarray(v, dtype) for k, v in b.items()}
    xn, dn = np.asarray(x, dtype), np.asarray(d, dtype)
    rng = np.random.default_rng(seed)
    fp = dynamics.relax_to_tolerance(net, dynamics.zero_state(net, xn), Wn, bn, tol,
                                     max_steps, activation=activation)
    t64 = {k: torch.as_tensor(np.asarray(v, np.float64)) for k, v in fp.state.items()}
    g = truth.implicit_gradient(
        net, t64[net.input.name], torch.as_tensor(np.asarray(d, np.float64)),
        to_tensors(W, "cpu", torch.float64), to_tensors(b, "cpu", torch.float64),
        activation, fixed_point=dynamics.Relaxed(t64, fp.steps, fp.residual))

    fixed = energy.input_currents(net, xn, Wn, activation)
    cast = (lambda arrays, to: {k: np.asarray(v, to) for k, v in arrays.items()})
    W64, b64 = cast(W, np.float64), cast(b, np.float64)
    fixed64 = cast(fixed, np.float64)

    def phase(start, target, beta):
        if noise:
            steps = noisy_steps[1] if target is not None else noisy_steps[0]
            return dynamics.relax(net, start, Wn, bn, steps, target, beta, activation, noise,
                                  rng, fixed)
        if dtype is not np.float64:
            # most of the way in fast float64, the last digits in extended precision
            start = cast(dynamics.relax_to_tolerance(
                net, cast(start, np.float64), W64, b64, 1e-14, max_steps,
                None if target is None else np.asarray(target, np.float64),
                np.asarray(beta, np.float64), activation, fixed=fixed64).state, dtype)
        return dynamics.relax_to_tolerance(net, start, Wn, bn, tol, max_steps, target, beta,
                                           activation, fixed=fixed).state

    attrs = {"noise": float(noise), "tol": float(tol), "precision": precision,
             "activation": activation, "batch": len(xn), "free_residual": float(fp.residual),
             "free_steps_taken": int(fp.steps), "cg_residual": float(g.cg_residual),
             "network": net.describe()}
    return _Problem(net, {k: v.numpy() for k, v in flat_params(g.W, g.b).items()},
                    {k: v.numpy() for k, v in g.boundary.items()}, fp, phase,
                    dynamics.zero_state(net, xn), xn, dn, dtype, rng, attrs)


def _estimates(problem: _Problem, betas, estimators, repeats, activation):
    """Yield ``(i, j, r, gradient estimate ĝ = −ΔW per parameter, kink crossings)``."""
    net, act, dtype = problem.net, energy.get_activation(activation), problem.dtype
    noisy = problem.attrs["noise"] > 0
    for i, beta in enumerate(betas):
        for j, name in enumerate(estimators):
            est = Estimator(name, float(beta))
            for r in range(repeats):
                signs = est.signs(len(problem.x), problem.rng)
                beta_s = dtype(est.beta) * signs.astype(dtype)
                s0 = problem.phase(problem.zero, None, 0.0) if noisy else problem.free.state
                a = problem.phase(s0, problem.d, beta_s)
                c = problem.phase(s0, problem.d, -beta_s) if name == "symmetric" else s0
                on_a, on_c = dynamics.on_boundary(net, a), dynamics.on_boundary(net, c)
                crossings = sum(int((on_a[p] != on_c[p]).sum()) for p in on_a)
                dW, db = ep_update(net, {k: act.rho(v) for k, v in a.items()},
                                   {k: act.rho(v) for k, v in c.items()},
                                   est.factors(signs).astype(dtype))
                estimate = {k: -np.asarray(v, np.float64)
                            for k, v in flat_params(dW, db).items()}
                yield i, j, r, estimate, crossings


def _common_vars(problem: _Problem) -> tuple[dict, dict]:
    net = problem.net
    names, layers = param_names(net), [p.name for p in net.dynamic]
    data = {
        "true_norm": ("param", [float(np.linalg.norm(problem.true[n])) for n in names]),
        "boundary_units": ("layer", [int(problem.boundary[p].sum()) for p in layers],
                           {"long_name": "units on 0 or 1 at the free fixed point, summed "
                                         "over the batch"}),
        "layer_units": ("layer", [net[p].size * len(problem.x) for p in layers]),
    }
    return data, {"param": names, "layer": layers}


def gradcheck(net: Network, x, d, W, b, betas, estimators=("one-sided", "symmetric"),
              noise: float = 0.0, repeats: int = 1, seed: int = 0,
              activation: str = "hard_sigmoid", precision: str = "longdouble",
              tol: float | None = None, max_steps: int = 50_000,
              noisy_steps: tuple[int, int] = (100, 50), progress=None) -> xr.Dataset:
    """EP estimates against the ground truth for every β, estimator and repeat.

    Parameters
    ----------
    x : (batch, N_in) array; d : (batch, N_out) one-hot array
    W, b : dicts of numpy arrays
    betas : sequence of float > 0
    noise : float
        σ of the neuronal noise; with σ > 0 the phases run ``noisy_steps``
        (free, nudged) Euler steps instead of relaxing to ``tol``.
    repeats : int
        Independent noise realisations (and random signs for ``random-sign``).
    precision : {"longdouble", "float64"}
        Arithmetic of the EP phases.  The symmetric estimate divides a
        difference of two nearly equal fixed points by 2β: in float64 rounding
        can put a floor of about 1e-8 under its relative error at β = 1e-5, so
        the default is numpy's extended precision (64-bit mantissa on x86).
    tol : float
        Relax each deterministic phase until max |ds/dt|·τ < tol (default
        1e-18 in long double, 1e-15 in float64).

    Returns
    -------
    xr.Dataset with dims ``beta``, ``estimator``, ``repeat``, ``param``:
    ``cosine``, ``rel_error``, ``sign_agreement``; over (beta, estimator,
    repeat) ``kink_crossings``; over ``param`` ``true_norm``; over ``layer``
    ``boundary_units`` at the free fixed point.
    """
    problem = _prepare(net, x, d, W, b, noise, seed, activation, precision, tol, max_steps,
                       noisy_steps)
    names = param_names(net)
    shape = (len(betas), len(estimators), repeats, len(names))
    cos, rel, sign = (np.full(shape, np.nan) for _ in range(3))
    crossings = np.zeros(shape[:3], dtype=np.int64)
    for i, j, r, estimate, kinks in _estimates(problem, betas, estimators, repeats,
                                               activation):
        crossings[i, j, r] = kinks
        for k, pname in enumerate(names):
            cos[i, j, r, k], rel[i, j, r, k], sign[i, j, r, k] = compare(
                estimate[pname], problem.true[pname])
        if progress and r == repeats - 1:
            progress()
    common, coords = _common_vars(problem)
    dims = ("beta", "estimator", "repeat", "param")
    return xr.Dataset(
        {"cosine": (dims, cos), "rel_error": (dims, rel, {"units": "1"}),
         "sign_agreement": (dims, sign),
         "kink_crossings": (dims[:3], crossings,
                            {"long_name": "units that moved between a face of the box and "
                                          "its interior from phase B to phase A"}),
         **common},
        coords={"beta": np.asarray(betas, float), "estimator": list(estimators),
                "repeat": np.arange(repeats), **coords},
        attrs=problem.attrs)


def bias_variance(net: Network, x, d, W, b, betas, estimators=("one-sided", "symmetric"),
                  noise: float = 0.0, repeats: int = 1, seed: int = 0,
                  activation: str = "hard_sigmoid", precision: str = "longdouble",
                  tol: float | None = None, max_steps: int = 50_000,
                  noisy_steps: tuple[int, int] = (100, 50)) -> xr.Dataset:
    """Bias and variance of the EP estimate over ``repeats`` noise realisations.

    For every β, estimator and parameter, with ``g`` the exact gradient and
    ``ĝ_r`` the estimate of realisation r:

    - ``bias`` ≈ ‖E[ĝ] − g‖ / ‖g‖
    - ``variance`` ≈ E‖ĝ − E[ĝ]‖² / ‖g‖²
    - ``mse`` = bias² + variance ≈ E‖ĝ − g‖² / ‖g‖²

    estimated without bias from the R realisations (sample variance with
    R − 1; the squared bias less the variance of the mean, clipped at 0).

    Arguments as for :func:`gradcheck`; without noise ``repeats`` is 1 and the
    variance 0.
    """
    repeats = repeats if noise else 1
    problem = _prepare(net, x, d, W, b, noise, seed, activation, precision, tol, max_steps,
                       noisy_steps)
    names = param_names(net)
    shape = (len(betas), len(estimators), len(names))
    bias, variance, crossings = np.zeros(shape), np.zeros(shape), np.zeros(shape[:2])
    total = {}
    squares = {}
    for i, j, r, estimate, kinks in _estimates(problem, betas, estimators, repeats,
                                               activation):
        crossings[i, j] += kinks / repeats
        for pname in names:
            total[i, j, pname] = total.get((i, j, pname), 0.0) + estimate[pname]
            squares[i, j, pname] = (squares.get((i, j, pname), 0.0)
                                    + float(np.sum(estimate[pname] ** 2)))
        if r < repeats - 1:
            continue
        for k, pname in enumerate(names):
            true = problem.true[pname]
            norm2 = max(float(np.sum(true ** 2)), 1e-300)
            mean = total.pop((i, j, pname)) / repeats
            spread = max(squares.pop((i, j, pname)) / repeats - float(np.sum(mean ** 2)), 0.0)
            # unbiased over the realisations: E‖mean − g‖² carries variance / R
            var = spread * repeats / (repeats - 1) if repeats > 1 else 0.0
            bias2 = float(np.sum((mean - true) ** 2)) - var / repeats
            bias[i, j, k] = np.sqrt(max(bias2, 0.0) / norm2)
            variance[i, j, k] = var / norm2
    common, coords = _common_vars(problem)
    dims = ("beta", "estimator", "param")
    return xr.Dataset(
        {"bias": (dims, bias, {"long_name": "‖E[ĝ] − g‖ / ‖g‖"}),
         "variance": (dims, variance, {"long_name": "E‖ĝ − E[ĝ]‖² / ‖g‖²"}),
         "mse": (dims, bias ** 2 + variance, {"long_name": "E‖ĝ − g‖² / ‖g‖² = bias² + variance"}),
         "kink_crossings": (dims[:2], crossings,
                            {"long_name": "mean units crossing a kink between the phases"}),
         **common},
        coords={"beta": np.asarray(betas, float), "estimator": list(estimators), **coords},
        attrs={**problem.attrs, "repeats": repeats})


def loglog_slope(betas, errors, lo=1e-5, hi=1e-3) -> float:
    """Least-squares slope of log(error) against log(β) over ``lo <= β <= hi``."""
    betas, errors = np.asarray(betas, float), np.asarray(errors, float)
    keep = (betas >= lo * (1 - 1e-9)) & (betas <= hi * (1 + 1e-9)) & (errors > 0)
    if keep.sum() < 2:
        return float("nan")
    return float(np.polyfit(np.log(betas[keep]), np.log(errors[keep]), 1)[0])


def default_betas() -> np.ndarray:
    """β from 1e-5 to 1, log-spaced, with every value 0.001 … 0.009 included."""
    return np.unique(np.round(np.concatenate([np.logspace(-5, 0, 11),
                                              np.arange(1, 10) * 1e-3]), 12))


def breakdown_beta(ds: xr.Dataset, estimator: str, threshold: float = 0.1) -> float:
    """Smallest β whose relative error (mean over repeats, worst parameter) exceeds
    ``threshold``; NaN if none does."""
    err = ds.rel_error.sel(estimator=estimator).mean("repeat").max("param")
    over = ds.beta.values[err.values > threshold]
    return float(over.min()) if len(over) else float("nan")


def summarize(ds: xr.Dataset) -> str:
    """A printable table of a :func:`gradcheck` Dataset with slopes and break-down β."""
    lines = [f"gradcheck {ds.attrs['network']}, batch {ds.attrs['batch']}, "
             f"{ds.attrs['activation']}, noise σ={ds.attrs['noise']:g}, "
             f"{ds.attrs['precision']}; free phase |ds/dt|·τ={ds.attrs['free_residual']:.1e}",
             "units on a face of the box at s⁰: " + ", ".join(
                 f"{layer} {int(n)}/{int(t)}" for layer, n, t in
                 zip(ds.layer.values, ds.boundary_units.values, ds.layer_units.values)),
             f"{'estimator':<12}{'beta':>9}{'cosine min':>12}{'rel.err max':>13}"
             f"{'sign min':>10}{'kinks':>7}"]
    mean = ds.mean("repeat")
    for est in ds.estimator.values:
        for beta in ds.beta.values:
            row = mean.sel(estimator=est, beta=beta)
            lines.append(f"{est:<12}{beta:>9.3g}{float(row.cosine.min()):>12.6f}"
                         f"{float(row.rel_error.max()):>13.2e}"
                         f"{float(row.sign_agreement.min()):>10.4f}"
                         f"{float(row.kink_crossings):>7.0f}")
    in_range = int(((ds.beta >= 1e-5 * (1 - 1e-9)) & (ds.beta <= 1e-3 * (1 + 1e-9))).sum())
    lines.append("log-log slope of the relative error over 1e-5 <= β <= 1e-3:"
                 + ("" if in_range >= 2 else " needs two β values in that range"))
    for est in ds.estimator.values if in_range >= 2 else ():
        slopes = [loglog_slope(ds.beta, mean.rel_error.sel(estimator=est, param=p))
                  for p in ds.param.values]
        lines.append(f"  {est:<12}" + "  ".join(f"{p} {s:.3f}"
                                                for p, s in zip(ds.param.values, slopes)))
    lines.append("smallest β with relative error > 10%: " + ", ".join(
        f"{est} {breakdown_beta(ds, est):g}" for est in ds.estimator.values))
    return "\n".join(lines)
