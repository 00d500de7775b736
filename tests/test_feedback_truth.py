"""Ground-truth gradients for networks with separate feedback (no energy).

The implicit gradient goes through the Jacobian of the vector field there; it
is checked against central finite differences, long BPTT and, with ``B = W``,
the Hessian route of the tied network.
"""

import numpy as np
import pytest
import torch

from cortex_ep.engines.twin import truth
from cortex_ep.model import energy
from cortex_ep.model.dynamics import relax_to_tolerance, zero_state
from cortex_ep.model.spec import layered

TOL = 1e-13
SIZES, LRS = [6, 5, 4, 3], [0.1, 0.2, 0.05]


def _setup(feedback="separate", feedback_init="random", seed=1):
    net = layered(SIZES, LRS, feedback=feedback, feedback_init=feedback_init)
    W, b = energy.init_params(net, seed)
    W = {k: torch.tensor(v) for k, v in W.items()}
    b = {k: torch.full(v.shape, 0.1, dtype=torch.float64) for k, v in b.items()}
    x = torch.tensor(np.random.default_rng(0).uniform(0, 1, (4, 6)))
    d = torch.eye(3, dtype=torch.float64)[[0, 2, 1, 0]]
    return net, W, b, x, d


def _loss(net, x, d, W, b):
    s = relax_to_tolerance(net, zero_state(net, x), W, b, TOL, 200_000).state
    return float(energy.cost(net, s, d).mean())


def _finite_differences(net, W, b, x, d, eps=1e-6, n_forward=8):
    """Central differences of L(θ): every entry of the feedback matrices and
    biases, ``n_forward`` random entries of each forward matrix (NaN elsewhere)."""
    def perturbed(store, name, idx, delta):
        out = {k: v.clone() for k, v in store.items()}
        out[name][idx] += delta
        return out

    rng = np.random.default_rng(2)
    feedback = {energy.feedback_name(p.name) for p in net.separate}
    grads = {}
    for kind, store in (("W", W), ("b", b)):
        for k, v in store.items():
            g = torch.full_like(v, float("nan"))
            entries = list(np.ndindex(tuple(v.shape)))
            if kind == "W" and k not in feedback:
                entries = [entries[i] for i in rng.choice(len(entries), n_forward, False)]
            for idx in entries:
                plus, minus = perturbed(store, k, idx, eps), perturbed(store, k, idx, -eps)
                if kind == "W":
                    g[idx] = _loss(net, x, d, plus, b) - _loss(net, x, d, minus, b)
                else:
                    g[idx] = _loss(net, x, d, W, plus) - _loss(net, x, d, W, minus)
            grads[kind, k] = g / (2 * eps)
    return grads


def _assert_close(a, b, scale):
    torch.testing.assert_close(a, b, atol=1e-6 * scale, rtol=0)


@pytest.fixture(scope="module")
def separate():
    net, W, b, x, d = _setup()
    return net, W, b, x, d, truth.implicit_gradient(net, x, d, W, b, tol=TOL)


def test_setup_has_separate_feedback_interior_and_boundary_units(separate):
    net, W, b, x, d, g = separate
    assert [p.name for p in net.separate] == ["h1_h2", "h2_y"]
    assert set(W) == set(energy.weight_names(net))
    with pytest.raises(ValueError):
        energy.energy(net, zero_state(net, x), W, b)
    n_interior = {k: int((~v).sum()) for k, v in g.boundary.items()}
    n_boundary = {k: int(v.sum()) for k, v in g.boundary.items()}
    assert all(n_interior.values()) and any(n_boundary.values())
    assert g.residual < TOL
    assert g.cg_residual < 1e-12


def test_implicit_gradient_matches_finite_differences(separate):
    net, W, b, x, d, g = separate
    fd = _finite_differences(net, W, b, x, d)
    scale = max(float(v.nan_to_num().abs().max()) for v in fd.values())
    for (kind, k), v in fd.items():
        done = ~v.isnan()
        _assert_close((g.W if kind == "W" else g.b)[k][done], v[done], scale)


def test_long_bptt_matches_implicit_gradient(separate):
    net, W, b, x, d, g = separate
    bptt = truth.bptt_gradient(net, x, d, W, b, steps=600)
    assert bptt.residual < 1e-12
    for k in W:
        torch.testing.assert_close(bptt.W[k], g.W[k], atol=1e-12, rtol=0)
    for k in b:
        torch.testing.assert_close(bptt.b[k], g.b[k], atol=1e-12, rtol=0)


def test_feedback_gradient_is_its_own(separate):
    net, W, b, x, d, g = separate
    for proj in net.separate:
        fwd, fb = g.W[proj.name], g.W[energy.feedback_name(proj.name)]
        assert float(fb.abs().max()) > 1e-4
        assert float((fb - fwd).abs().max()) > 1e-4


def test_jacobian_route_with_transposed_init_equals_tied_hessian_route():
    """With B = W the separate network is the tied one; tied W carries both the
    bottom-up and the top-down current, so its gradient is the sum of both."""
    net, W, b, x, d = _setup(feedback_init="transpose")
    tied = layered(SIZES, LRS)
    Wt = {k: W[k] for k in energy.weight_names(tied)}
    for p in net.separate:
        assert torch.equal(W[energy.feedback_name(p.name)], W[p.name])
    gs = truth.implicit_gradient(net, x, d, W, b, tol=TOL)
    gt = truth.implicit_gradient(tied, x, d, Wt, b, tol=TOL)
    assert gt.cg_residual < 1e-10 and gs.cg_residual < 1e-12
    for proj in tied.projections:
        combined = gs.W[proj.name]
        if proj.name in {p.name for p in net.separate}:
            combined = combined + gs.W[energy.feedback_name(proj.name)]
        torch.testing.assert_close(combined, gt.W[proj.name], atol=1e-12, rtol=0)
    for k in b:
        torch.testing.assert_close(gs.b[k], gt.b[k], atol=1e-12, rtol=0)


def test_samples_without_interior_output_have_zero_gradient():
    net, W, b, x, d = _setup()
    b["y"] = torch.full((3,), 5.0, dtype=torch.float64)  # outputs pinned at 1
    g = truth.implicit_gradient(net, x, d, W, b, tol=TOL)
    assert bool(g.boundary["y"].all())
    assert g.cg_residual == 0.0
    for v in list(g.W.values()) + list(g.b.values()):
        assert float(v.abs().max()) == 0.0
