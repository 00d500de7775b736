"""The energy module against independent computations."""

import numpy as np
import pytest

from cortex_ep.engines import reference
from cortex_ep.model import energy
from cortex_ep.model.spec import layered


def _params(net, seed=3, scale=0.3):
    rng = np.random.default_rng(seed)
    W = {p.name: scale * rng.standard_normal((net[p.pre].size, net[p.post].size))
         for p in net.projections}
    b = {pop.name: 0.3 + 0.2 * rng.standard_normal(pop.size) for pop in net.dynamic}
    return W, b


def test_energy_matches_hand_written_formula(tiny_net, tiny_batch):
    x, d, _ = tiny_batch
    W, b = _params(tiny_net)
    rng = np.random.default_rng(1)
    h, y = rng.uniform(0, 1, (8, 5)), rng.uniform(0, 1, (8, 3))
    s = {"x": x, "h1": h, "y": y}
    expected = (0.5 * (h ** 2).sum(1) + 0.5 * (y ** 2).sum(1)
                - np.einsum("bi,ij,bj->b", x, W["x_h1"], h)
                - np.einsum("bi,ij,bj->b", h, W["h1_y"], y)
                - h @ b["h1"] - y @ b["y"])
    np.testing.assert_allclose(energy.energy(tiny_net, s, W, b), expected, rtol=1e-12)
    np.testing.assert_allclose(energy.cost(tiny_net, s, d), 0.5 * ((y - d) ** 2).sum(1))
    np.testing.assert_allclose(energy.total_energy(tiny_net, s, W, b, d, 0.7),
                               expected + 0.7 * 0.5 * ((y - d) ** 2).sum(1), rtol=1e-12)


@pytest.mark.parametrize("activation", ["hard_sigmoid", "logistic"])
def test_neg_gradient_is_minus_dF_ds(tiny_net, tiny_batch, activation):
    x, d, _ = tiny_batch
    W, b = _params(tiny_net)
    rng = np.random.default_rng(2)
    # interior points: away from the hard sigmoid's kinks
    s = {"x": x, "h1": rng.uniform(0.1, 0.9, (8, 5)), "y": rng.uniform(0.1, 0.9, (8, 3))}
    beta = 0.3
    grad = energy.neg_gradient(tiny_net, s, W, b, d, beta, activation)
    eps = 1e-6
    for name in ("h1", "y"):
        for u in range(s[name].shape[1]):
            plus = {k: v.copy() for k, v in s.items()}
            minus = {k: v.copy() for k, v in s.items()}
            plus[name][:, u] += eps
            minus[name][:, u] -= eps
            fd = (energy.total_energy(tiny_net, plus, W, b, d, beta, activation)
                  - energy.total_energy(tiny_net, minus, W, b, d, beta, activation)) / (2 * eps)
            np.testing.assert_allclose(grad[name][:, u], -fd, atol=1e-7)


def test_activations():
    s = np.array([-0.5, 0.0, 0.3, 1.0, 1.4])
    np.testing.assert_array_equal(energy.rho(s), [0, 0, 0.3, 1, 1])
    np.testing.assert_array_equal(energy.rho_prime(s), [0, 1, 1, 1, 0])
    r = energy.rho(s, "logistic")
    np.testing.assert_allclose(r, 1 / (1 + np.exp(-4 * (s - 0.5))))
    fd = (energy.rho(s + 1e-6, "logistic") - energy.rho(s - 1e-6, "logistic")) / 2e-6
    np.testing.assert_allclose(energy.rho_prime(s, "logistic"), fd, rtol=1e-6)
    with pytest.raises(ValueError, match="unknown activation"):
        energy.get_activation("relu")


def test_free_phase_descends_energy_to_a_fixed_point(tiny_net, tiny_batch):
    """Projected Euler with dt/τ = 0.5 is projected gradient descent on E:
    E never increases and the state converges to a point where the projected
    gradient vanishes."""
    x, _, _ = tiny_batch
    W, b = _params(tiny_net, scale=0.2)
    s = reference.zero_state(tiny_net, x)
    energies = [energy.energy(tiny_net, s, W, b)]
    for _ in range(200):
        s = energy.euler_step(tiny_net, s, W, b)
        energies.append(energy.energy(tiny_net, s, W, b))
    energies = np.array(energies)
    assert np.all(np.diff(energies, axis=0) <= 1e-12)
    assert energies[-1].max() < energies[0].max()
    nxt = energy.euler_step(tiny_net, s, W, b)
    for name in ("h1", "y"):
        assert np.abs(nxt[name] - s[name]).max() < 1e-10
    # stationarity: inside the box the gradient is zero, on a face it points outward
    g = energy.neg_gradient(tiny_net, s, W, b)
    for name in ("h1", "y"):
        inside = (s[name] > 1e-9) & (s[name] < 1 - 1e-9)
        assert np.abs(g[name][inside]).max(initial=0) < 1e-8
        assert np.all(g[name][s[name] <= 1e-9] <= 1e-8)
        assert np.all(g[name][s[name] >= 1 - 1e-9] >= -1e-8)


def test_euler_step_noise_scale():
    """With σ > 0 a unit with no input is an Ornstein–Uhlenbeck process whose
    stationary variance for step h = dt/τ is σ² h / (2h − h²)."""
    net = layered([1, 1, 1], [0.0, 0.0])
    W = {"x_h1": np.zeros((1, 1)), "h1_y": np.zeros((1, 1))}
    b = {"h1": np.array([0.5]), "y": np.array([0.5])}
    s = {"x": np.zeros((20000, 1)), "h1": np.full((20000, 1), 0.5),
         "y": np.full((20000, 1), 0.5)}
    rng = np.random.default_rng(0)
    for _ in range(30):
        s = energy.euler_step(net, s, W, b, noise=0.05, rng=rng)
    h = 0.5
    expected = 0.05 ** 2 * h / (2 * h - h * h)
    assert abs(s["h1"].var() / expected - 1) < 0.05
