"""Ground-truth gradients against central finite differences."""

import numpy as np
import pytest
import torch

from cortex_ep.engines.twin import truth
from cortex_ep.model import energy
from cortex_ep.model.dynamics import Relaxed
from cortex_ep.model.spec import layered

TOL = 1e-14


def _setup(scale, seed=1):
    net = layered([5, 4, 3], [1.0, 1.0])
    rng = np.random.default_rng(seed)
    W = {p.name: torch.tensor(scale * rng.standard_normal((net[p.pre].size, net[p.post].size)))
         for p in net.projections}
    b = {pop.name: torch.full((pop.size,), 0.4, dtype=torch.float64) for pop in net.dynamic}
    x = torch.tensor(rng.uniform(0, 1, (3, 5)))
    d = torch.eye(3, dtype=torch.float64)[[0, 2, 1]]
    return net, W, b, x, d


def _finite_differences(net, W, b, x, d, eps=1e-6):
    def loss(W_, b_):
        s = truth.free_fixed_point(net, x, W_, b_, tol=TOL).state
        return float(energy.cost(net, s, d).mean())

    def perturbed(store, name, idx, delta):
        out = {k: v.clone() for k, v in store.items()}
        out[name][idx] += delta
        return out

    gW = {k: torch.zeros_like(v) for k, v in W.items()}
    gb = {k: torch.zeros_like(v) for k, v in b.items()}
    for k, v in W.items():
        for idx in np.ndindex(tuple(v.shape)):
            gW[k][idx] = (loss(perturbed(W, k, idx, eps), b)
                          - loss(perturbed(W, k, idx, -eps), b)) / (2 * eps)
    for k, v in b.items():
        for idx in np.ndindex(tuple(v.shape)):
            gb[k][idx] = (loss(W, perturbed(b, k, idx, eps))
                          - loss(W, perturbed(b, k, idx, -eps))) / (2 * eps)
    return gW, gb


@pytest.mark.parametrize("scale, boundary", [(0.2, False), (0.6, True)])
def test_implicit_and_bptt_match_finite_differences(scale, boundary):
    net, W, b, x, d = _setup(scale)
    fd_W, fd_b = _finite_differences(net, W, b, x, d)
    implicit = truth.implicit_gradient(net, x, d, W, b, tol=TOL)
    bptt = truth.bptt_gradient(net, x, d, W, b, steps=400)
    n_boundary = sum(int(v.sum()) for v in implicit.boundary.values())
    assert (n_boundary > 0) == boundary
    for grad in (implicit, bptt):
        for k in W:
            torch.testing.assert_close(grad.W[k], fd_W[k], atol=1e-8, rtol=0)
        for k in b:
            torch.testing.assert_close(grad.b[k], fd_b[k], atol=1e-8, rtol=0)
    assert implicit.cg_residual < 1e-10


def test_bptt_of_few_steps_is_the_gradient_of_those_steps():
    net, W, b, x, d = _setup(0.2)
    g = truth.bptt_gradient(net, x, d, W, b, steps=3)
    eps = 1e-6
    k, idx = "h1_y", (1, 2)
    from cortex_ep.model.dynamics import relax, zero_state

    def loss(W_):
        return float(energy.cost(net, relax(net, zero_state(net, x), W_, b, 3), d).mean())

    Wp = {kk: v.clone() for kk, v in W.items()}
    Wm = {kk: v.clone() for kk, v in W.items()}
    Wp[k][idx] += eps
    Wm[k][idx] -= eps
    assert abs(float(g.W[k][idx]) - (loss(Wp) - loss(Wm)) / (2 * eps)) < 1e-8


def test_samples_without_interior_output_have_zero_gradient():
    """A batch whose outputs all sit on a face: no interior output, no gradient."""
    net, W, b, x, d = _setup(0.2)
    b["y"] = torch.full((3,), 5.0, dtype=torch.float64)  # outputs pinned at 1
    g = truth.implicit_gradient(net, x, d, W, b, tol=TOL)
    assert bool(g.boundary["y"].all())
    for v in list(g.W.values()) + list(g.b.values()):
        assert float(v.abs().max()) == 0.0


def test_implicit_gradient_needs_the_fixed_point():
    net, W, b, x, d = _setup(0.2)
    fp = truth.free_fixed_point(net, x, W, b, tol=TOL)
    given = truth.implicit_gradient(net, x, d, W, b, fixed_point=Relaxed(fp.state, 0, 0.0))
    own = truth.implicit_gradient(net, x, d, W, b, tol=TOL)
    for k in W:
        torch.testing.assert_close(given.W[k], own.W[k])
