"""Ground truth for the EP estimate: the exact gradient of C(s⁰(θ)).

Two routes, both with autograd on the model of :mod:`cortex_ep.model.energy`:

implicit differentiation
    At the free fixed point the units strictly inside (0, 1) satisfy
    ``f_I(s, θ) = 0`` with ``f`` the vector field :func:`energy.neg_gradient`;
    units on the box's faces stay there under small changes of θ.
    Differentiating, ``J_II ds_I/dθ = −∂f_I/∂θ`` with ``J = ∂f/∂s``, so
    ``dL/dθ = −λᵀ ∂f_I/∂θ`` where ``J_IIᵀ λ = ∂C/∂s_I``.  Tied networks use
    the energy's Hessian ``H = −J`` (symmetric): ``H_II λ = ∂C/∂s_I`` is solved
    per sample by conjugate gradients with Hessian-vector products.  With
    separate feedback no energy, hence no Hessian, exists: the dense Jacobian
    of the vector field is built by autograd (one backward pass per unit) and
    the non-symmetric system solved directly.
BPTT
    Backpropagation through the unrolled projected Euler steps of the free
    phase: the gradient of the loss after exactly ``steps`` steps.

Both return gradients of the batch-mean loss ``L = mean_i C(s⁰_i)``; the EP
estimators approximate ``−dL/dθ``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ...model import energy
from ...model.dynamics import (
    Relaxed,
    on_boundary,
    relax,
    relax_to_tolerance,
    zero_state,
)
from ...model.spec import Network


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

    Tied networks go through the energy's Hessian (conjugate gradients,
    ``cg_tol``, ``cg_max_iter``); networks with separate feedback through the
    dense Jacobian of the vector field (``cg_residual`` is then the relative
    residual of the direct solve).

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
    y = net.output.name
    rhs = {k: torch.zeros_like(s[k]) for k in names}
    rhs[y] = (s[y] - d) * interior[y]

    params = {**{f"W:{k}": v.detach().clone().requires_grad_(True) for k, v in W.items()},
              **{f"b:{k}": v.detach().clone().requires_grad_(True) for k, v in b.items()}}
    Wl, bl = {k: params[f"W:{k}"] for k in W}, {k: params[f"b:{k}"] for k in b}
    with torch.enable_grad():
        if net.separate:
            objective, res = _jacobian_adjoint(net, s, Wl, bl, names, interior, rhs,
                                               activation)
        else:
            objective, res = _hessian_adjoint(net, s, Wl, bl, names, interior, rhs,
                                              activation, cg_tol, cg_max_iter)
        # both routes: dL/dθ = −∂(objective)/∂θ / batch
        grads = torch.autograd.grad(objective, list(params.values()), allow_unused=True)
    n = x.shape[0]
    out = {k: (-gr / n if gr is not None else torch.zeros_like(params[k]))
           for k, gr in zip(params, grads)}
    gW = energy.symmetrize_lateral(net, {k: out[f"W:{k}"] for k in W})
    return Gradient(gW, {k: out[f"b:{k}"] for k in b},
                    boundary, float(rel.residual), s[y], res)


def _hessian_adjoint(net, s, W, b, names, interior, rhs, activation, cg_tol, cg_max_iter):
    """Tied networks: ``H_II λ = rhs`` by CG; returns ``(λᵀ ∂E/∂s, residual)``."""
    s_leaf = {k: s[k].clone().requires_grad_(True) for k in names}
    # one graph of ∂E/∂s serves the Hessian-vector products (d/ds) and the
    # mixed derivative λᵀ ∂²E/∂s∂θ (d/dθ)
    e = energy.energy(net, {**s, **s_leaf}, W, b, activation).sum()
    grad_s = torch.autograd.grad(e, [s_leaf[k] for k in names], create_graph=True)

    def hvp(v):
        out = torch.autograd.grad(grad_s, [s_leaf[k] for k in names],
                                  grad_outputs=[v[k] * interior[k] for k in names],
                                  retain_graph=True)
        return {k: o * interior[k] for k, o in zip(names, out)}

    lam, cg_res = _batched_cg(hvp, rhs, names, cg_tol, cg_max_iter)
    return sum((gi * lam[k]).sum() for gi, k in zip(grad_s, names)), cg_res


def _jacobian_adjoint(net, s, W, b, names, interior, rhs, activation):
    """Separate feedback: ``J_IIᵀ λ = rhs`` by a dense solve, with ``J`` the
    Jacobian of ``f = neg_gradient`` restricted to each sample's interior units
    (λ = 0 on the boundary); returns ``(Σ λ·f, max relative residual)``.
    """
    flat = torch.cat([s[k] for k in names], 1).requires_grad_(True)
    parts = dict(zip(names, flat.split([s[k].shape[1] for k in names], 1)))
    field = energy.neg_gradient(net, {**s, **parts}, W, b, activation=activation)
    f = torch.cat([field[k] for k in names], 1)
    # f is block-diagonal over samples: one backward pass per unit gives that
    # row of every sample's Jacobian
    J = torch.stack([torch.autograd.grad(f[:, j].sum(), flat, retain_graph=True)[0]
                     for j in range(f.shape[1])], 1)                  # (batch, row, col)
    g = torch.cat([rhs[k] for k in names], 1)
    inside = torch.cat([interior[k] for k in names], 1) > 0
    lam, res = torch.zeros_like(g), 0.0
    # one sample at a time: a batched LU with several threads can return invalid
    # pivots (pytorch/pytorch#142815); samples without interior output keep λ = 0
    for i in torch.nonzero(g.abs().sum(1) > 0)[:, 0].tolist():
        idx = torch.nonzero(inside[i])[:, 0]
        A, gi = J[i][idx[:, None], idx].T, g[i, idx]
        lam[i, idx] = torch.linalg.solve(A, gi)
        res = max(res, float((A @ lam[i, idx] - gi).norm() / gi.norm()))
    return (f * lam).sum(), res


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
