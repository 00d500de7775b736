"""Ground truth for the EP estimate: the exact gradient of C(s⁰(θ)).

Two routes, both with autograd on the energy of :mod:`cortex_ep.energy`:

implicit differentiation
    At the free fixed point the units strictly inside (0, 1) satisfy
    ∂E/∂s_I = 0; units on the box's faces stay there under small changes of
    θ.  Differentiating, ``H_II ds_I/dθ = −∂²E/∂s_I∂θ`` with ``H`` the energy's
    Hessian, so ``dL/dθ = −λᵀ ∂²E/∂s∂θ`` where ``H_II λ = ∂C/∂s_I`` — solved
    per sample by conjugate gradients with Hessian-vector products.
BPTT
    Backpropagation through the unrolled projected Euler steps of the free
    phase: the gradient of the loss after exactly ``steps`` steps.

Both return gradients of the batch-mean loss ``L = mean_i C(s⁰_i)``; the EP
estimators approximate ``−dL/dθ``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .. import energy
from ..spec import Network
from ..dynamics import Relaxed, on_boundary, relax, relax_to_tolerance, zero_state


@dataclass
class Gradient:
    """``dL/dθ`` for every weight and bias, plus diagnostics.

    Attributes
    ----------
    W, b : dict of tensors, the shapes of the parameters
    boundary : dict population -> (batch, N) bool tensor, units on a face of the box
    residual : float, max |ds/dt|·τ at the fixed point used
    output : (batch, N_out) tensor, the output state the loss was taken at
    cg_residual : float, relative residual of the adjoint solve (implicit only)
    """

    W: dict
    b: dict
    boundary: dict
    residual: float
    output: torch.Tensor
    cg_residual: float = 0.0


def free_fixed_point(net: Network, x, W, b, activation="hard_sigmoid", tol=1e-12,
                     max_steps=50_000) -> Relaxed:
    """Relax the free phase from rest until max |ds/dt|·τ < ``tol``."""
    return relax_to_tolerance(net, zero_state(net, x), W, b, tol, max_steps,
                              activation=activation)


def implicit_gradient(net: Network, x, d, W, b, activation="hard_sigmoid", fixed_point=None,
                      tol=1e-12, cg_tol=1e-12, cg_max_iter=2000) -> Gradient:
    """Exact ``dL/dθ`` at the free fixed point by implicit differentiation.

    Parameters
    ----------
    x : (batch, N_in) tensor; d : (batch, N_out) one-hot tensor
    W, b : dicts of tensors
    fixed_point : Relaxed, optional
        The free fixed point; relaxed to ``tol`` when not given.
    """
    rel = fixed_point or free_fixed_point(net, x, W, b, activation, tol)
    names = [p.name for p in net.dynamic]
    s = {k: v.detach() for k, v in rel.state.items()}
    boundary = on_boundary(net, s)
    interior = {k: (~boundary[k]).to(x.dtype) for k in names}

    params = {**{f"W:{k}": v.detach().clone().requires_grad_(True) for k, v in W.items()},
              **{f"b:{k}": v.detach().clone().requires_grad_(True) for k, v in b.items()}}
    s_leaf = {k: s[k].clone().requires_grad_(True) for k in names}
    with torch.enable_grad():
        # one graph of ∂E/∂s serves the Hessian-vector products (d/ds) and the
        # mixed derivative λᵀ ∂²E/∂s∂θ (d/dθ)
        e = energy.energy(net, {**s, **s_leaf}, {k: params[f"W:{k}"] for k in W},
                          {k: params[f"b:{k}"] for k in b}, activation).sum()
        grad_s = torch.autograd.grad(e, [s_leaf[k] for k in names], create_graph=True)

        def hvp(v):
            out = torch.autograd.grad(grad_s, [s_leaf[k] for k in names],
                                      grad_outputs=[v[k] * interior[k] for k in names],
                                      retain_graph=True)
            return {k: o * interior[k] for k, o in zip(names, out)}

        y = net.output.name
        rhs = {k: torch.zeros_like(s[k]) for k in names}
        rhs[y] = (s[y] - d) * interior[y]
        lam, cg_res = _batched_cg(hvp, rhs, names, cg_tol, cg_max_iter)
        mixed = sum((gi * lam[k]).sum() for gi, k in zip(grad_s, names))
        grads = torch.autograd.grad(mixed, list(params.values()), allow_unused=True)
    n = x.shape[0]
    out = {k: (-gr / n if gr is not None else torch.zeros_like(params[k]))
           for k, gr in zip(params, grads)}
    gW = energy.symmetrize_lateral(net, {k: out[f"W:{k}"] for k in W})
    return Gradient(gW, {k: out[f"b:{k}"] for k in b},
                    boundary, float(rel.residual), s[net.output.name], cg_res)


def _batched_cg(hvp, rhs, names, tol, max_iter):
    """Solve H λ = rhs for every sample at once (H block-diagonal over samples, SPD).

    A sample stops updating once its relative residual is below ``tol`` (or its
    curvature ``pᵀHp`` is not positive); samples with a zero right-hand side
    (no interior output unit) keep λ = 0.
    """
    def dot(u, v):
        return sum((u[k] * v[k]).sum(-1) for k in names)

    lam = {k: torch.zeros_like(rhs[k]) for k in names}
    r = {k: rhs[k].clone() for k in names}
    p = {k: r[k].clone() for k in names}
    rr = dot(r, r)
    target = tol * tol * rr
    active = rr > 0
    for _ in range(max_iter):
        active = active & (rr > target)
        if not bool(active.any()):
            break
        hp = hvp(p)
        curvature = dot(p, hp)
        active = active & (curvature > 0)
        alpha = torch.where(active, rr / torch.where(active, curvature, 1), 0)
        for k in names:
            lam[k] = lam[k] + alpha[:, None] * p[k]
            r[k] = r[k] - alpha[:, None] * hp[k]
        rr_new = dot(r, r)
        beta = torch.where(active, rr_new / torch.where(active, rr, 1), 0)
        for k in names:
            p[k] = r[k] + beta[:, None] * p[k]
        rr = torch.where(active, rr_new, rr)
    rel = torch.where(target > 0, (rr / torch.where(target > 0, target, 1)).sqrt() * tol, 0)
    return lam, float(rel.max())


def bptt_gradient(net: Network, x, d, W, b, steps: int, activation="hard_sigmoid") -> Gradient:
    """``dL/dθ`` of the loss after exactly ``steps`` free Euler steps, by BPTT."""
    with torch.enable_grad():
        Wl = {k: v.detach().clone().requires_grad_(True) for k, v in W.items()}
        bl = {k: v.detach().clone().requires_grad_(True) for k, v in b.items()}
        s = relax(net, zero_state(net, x), Wl, bl, steps, activation=activation)
        loss = energy.cost(net, s, d).mean()
        grads = torch.autograd.grad(loss, list(Wl.values()) + list(bl.values()),
                                    allow_unused=True)
    gW = energy.symmetrize_lateral(net, {k: g if g is not None else torch.zeros_like(Wl[k])
                                         for k, g in zip(Wl, grads)})
    gb = {k: g if g is not None else torch.zeros_like(bl[k])
          for k, g in zip(bl, grads[len(Wl):])}
    last = {k: v.detach() for k, v in s.items()}
    nxt = relax(net, last, W, b, 1, activation=activation)
    residual = max(float((nxt[p.name] - last[p.name]).abs().max()) for p in net.dynamic)
    return Gradient(gW, gb, on_boundary(net, last), residual / (net.dt / net.tau),
                    last[net.output.name])
