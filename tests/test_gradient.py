"""The EP estimate approaches the true gradient of C(s⁰) as β → 0."""

import numpy as np

from cortex_ep import Relaxation
from cortex_ep.engines import reference
from cortex_ep.model import energy
from cortex_ep.model.estimators import Estimator
from cortex_ep.model.spec import layered

STEPS = 400


def _setup():
    net = layered([5, 4, 3], [1.0, 1.0], name="tiny")
    rng = np.random.default_rng(1)
    W = {p.name: 0.2 * rng.standard_normal((net[p.pre].size, net[p.post].size))
         for p in net.projections}
    b = {pop.name: np.full(pop.size, 0.4) for pop in net.dynamic}
    x = rng.uniform(0, 1, (1, 5))
    d = np.array([[1.0, 0.0, 0.0]])
    return net, W, b, x, d


def _loss_at_fixed_point(net, W, b, x, d):
    s = reference.relax(net, reference.zero_state(net, x), W, b, STEPS)
    return float(energy.cost(net, s, d)[0]), s


def test_fixed_point_is_interior():
    net, W, b, x, d = _setup()
    _, s = _loss_at_fixed_point(net, W, b, x, d)
    for name in ("h1", "y"):
        assert np.all((s[name] > 0.05) & (s[name] < 0.95))


def test_one_sided_ep_converges_to_finite_difference_gradient():
    net, W, b, x, d = _setup()
    eps = 1e-6
    true = {}
    for name, w in W.items():
        g = np.zeros_like(w)
        for idx in np.ndindex(w.shape):
            for sign in (1, -1):
                Wp = {k: v.copy() for k, v in W.items()}
                Wp[name][idx] += sign * eps
                g[idx] += sign * _loss_at_fixed_point(net, Wp, b, x, d)[0]
        true[name] = -g / (2 * eps)  # descent direction −∂C(s⁰)/∂W
    errors = []
    for beta in (0.1, 0.01, 0.001):
        est = Estimator("one-sided", beta)
        rel = Relaxation(STEPS, STEPS)
        states, signs = reference.ep_phases(net, x, d, W, b, est, rel)
        dW, _ = reference.ep_gradient(net, states, signs, est)
        errors.append(max(np.linalg.norm(dW[k] - true[k]) / np.linalg.norm(true[k])
                          for k in W))
    assert errors[0] > errors[1] > errors[2]
    assert errors[2] < 5e-3
    # the one-sided bias is O(β): a tenfold smaller β, roughly tenfold smaller error
    assert 5 < errors[1] / errors[2] < 20


def test_symmetric_estimator_is_second_order():
    net, W, b, x, d = _setup()
    ref = Estimator("symmetric", 1e-4)
    rel = Relaxation(STEPS, STEPS)
    states, signs = reference.ep_phases(net, x, d, W, b, ref, rel)
    truth, _ = reference.ep_gradient(net, states, signs, ref)
    err = {}
    for beta in (0.1, 0.05):
        est = Estimator("symmetric", beta)
        states, signs = reference.ep_phases(net, x, d, W, b, est, rel)
        dW, _ = reference.ep_gradient(net, states, signs, est)
        err[beta] = np.linalg.norm(dW["x_h1"] - truth["x_h1"])
    # halving β quarters the symmetric estimator's bias
    assert 3.0 < err[0.1] / err[0.05] < 5.0
