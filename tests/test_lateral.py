"""Cortical columns with lateral in-column weights: layout, energy, engines, ground truth."""

import numpy as np
import pytest
import torch
import xarray as xr

from cortex_ep import Relaxation, data
from cortex_ep.engines.brian.engine import BrianEngine
from cortex_ep.engines.reference import ReferenceEngine
from cortex_ep.engines.twin import truth
from cortex_ep.engines.twin.backprop import FeedforwardEngine, RecurrentBackpropEngine
from cortex_ep.engines.twin.engine import TorchEngine
from cortex_ep.gradients import gradcheck
from cortex_ep.learning.weights import params_from_weights, weights_dataset
from cortex_ep.model import energy
from cortex_ep.model.estimators import Estimator
from cortex_ep.model.spec import Network, Population, Projection, SpecError, layered
from cortex_ep.recordings.traces import unit_coords


def _net(lateral_lr=0.2):
    # 3 columns of 3 units in h1
    return layered([6, 9, 3], [0.1, 0.05], columns={1: 3}, lateral_lr={1: lateral_lr},
                   name="columns")


def _params(net, scale=0.15, seed=0):
    rng = np.random.default_rng(seed)
    W, b = energy.init_params(net, seed)
    W["h1_h1"] = energy.lateral_outer(rng.uniform(0, 1, (5, 9)), np.full(5, scale), 3)
    b = {k: v + 0.4 for k, v in b.items()}
    return W, b


def _batch(n=10, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    return rng.uniform(0, 1, (n, 6)), data.one_hot(y, 3)


def test_column_layout_and_coordinates():
    net = _net()
    pop = net["h1"]
    assert (pop.n_columns, pop.column_size) == (3, 3)
    coords = unit_coords(net)
    assert coords["column"][1].tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2, 0, 0, 0]
    assert coords["index"][1].tolist() == list(range(9)) + [0, 1, 2]
    W, _ = energy.init_params(net)
    assert W["h1_h1"].shape == (3, 3, 3) and not W["h1_h1"].any()
    assert [p.name for p in net.lateral] == ["h1"]


@pytest.mark.parametrize("kwargs, message", [
    (dict(role="output", lateral_lr=0.1), "only hidden populations can"),
    (dict(lateral_lr=-1.0), "has lateral_lr -1.0; use a finite value >= 0"),
    (dict(columns=4, lateral_lr=0.1), "columns of one unit"),
])
def test_lateral_spec_errors(kwargs, message):
    hidden = dict(name="h", size=4, role="hidden", columns=2)
    hidden.update(kwargs)
    pops = [Population("x", 3, "input"), Population(**hidden)]
    if hidden["role"] != "output":
        pops.append(Population("y", 2, "output"))
    projs = [Projection("x", "h")] + ([Projection("h", "y")] if len(pops) == 3 else [])
    with pytest.raises(SpecError, match=message):
        Network(tuple(pops), tuple(projs))


def test_lateral_energy_is_the_hand_written_symmetric_form():
    net = _net()
    W, b = _params(net)
    x, _ = _batch(4)
    s = {"x": x, "h1": np.random.default_rng(1).uniform(0, 1, (4, 9)),
         "y": np.random.default_rng(2).uniform(0, 1, (4, 3))}
    without = layered([6, 9, 3], [0.1, 0.05], columns={1: 3})
    L = np.zeros((9, 9))
    for c in range(3):
        L[3 * c:3 * c + 3, 3 * c:3 * c + 3] = W["h1_h1"][c]
    assert np.allclose(L, L.T) and not np.diag(L).any()
    r = s["h1"]
    expected = energy.energy(without, s, W, b) - 0.5 * np.einsum("bi,ij,bj->b", r, L, r)
    np.testing.assert_allclose(energy.energy(net, s, W, b), expected, rtol=1e-13)
    # the dynamics are −∂E/∂s, lateral current included
    st = {k: torch.tensor(v, requires_grad=k != "x") for k, v in s.items()}
    Wt = {k: torch.tensor(v) for k, v in W.items()}
    bt = {k: torch.tensor(v) for k, v in b.items()}
    grads = torch.autograd.grad(energy.energy(net, st, Wt, bt).sum(), [st["h1"], st["y"]])
    ours = energy.neg_gradient(net, s, W, b)
    np.testing.assert_allclose(ours["h1"], -grads[0].numpy(), atol=1e-13)
    np.testing.assert_allclose(ours["y"], -grads[1].numpy(), atol=1e-13)


@pytest.mark.parametrize("estimator", ["symmetric", "random-sign"])
def test_engines_agree_with_lateral_weights(estimator):
    net = _net()
    W, b = _params(net)
    x, d = _batch(10)
    est, rel = Estimator(estimator, 0.3), Relaxation(10, 4)
    signs = est.signs(10, np.random.default_rng(5))
    ref = ReferenceEngine(net, est, rel).epoch(W, b, x, d, signs, 5, x[:4])
    others = {"torch": TorchEngine(net, est, rel, dtype="float64").epoch(W, b, x, d, signs, 5,
                                                                         x[:4]),
              "brian": BrianEngine(net, est, rel, target="numpy").epoch(W, b, x, d, signs, 5,
                                                                        x[:4])}
    assert np.abs(ref[0]["h1_h1"] - W["h1_h1"]).max() > 1e-4  # the lateral weights learned
    for name, out in others.items():
        for k in W:
            np.testing.assert_allclose(out[0][k], ref[0][k], atol=1e-12, err_msg=f"{name} {k}")
            # the learned blocks stay exactly symmetric with a zero diagonal
        L = out[0]["h1_h1"]
        np.testing.assert_array_equal(L, L.swapaxes(1, 2))
        assert not np.einsum("ckk->ck", L).any()
        np.testing.assert_allclose(out[3], ref[3], atol=1e-12)


def _loss(net, x, d, W, b):
    s = truth.free_fixed_point(net, x, W, b, tol=1e-14).state
    return float(energy.cost(net, s, d).mean())


def test_ground_truth_of_a_lateral_weight_is_the_tied_finite_difference():
    net = _net()
    W, b = _params(net)
    x, d = _batch(6)
    Wt = {k: torch.tensor(v) for k, v in W.items()}
    bt = {k: torch.tensor(v) for k, v in b.items()}
    xt, dt = torch.tensor(x), torch.tensor(d)
    g = truth.implicit_gradient(net, xt, dt, Wt, bt, tol=1e-14)
    bptt = truth.bptt_gradient(net, xt, dt, Wt, bt, steps=300)
    eps = 1e-6
    for c, i, j in [(0, 0, 1), (1, 2, 0), (2, 1, 2)]:
        def moved(delta):
            out = {k: v.clone() for k, v in Wt.items()}
            out["h1_h1"][c, i, j] += delta
            out["h1_h1"][c, j, i] += delta   # one symmetric synapse pair, one parameter
            return out
        fd = (_loss(net, xt, dt, moved(eps), bt) - _loss(net, xt, dt, moved(-eps), bt)) / (2 * eps)
        assert abs(float(g.W["h1_h1"][c, i, j]) - fd) < 1e-8
        assert abs(float(bptt.W["h1_h1"][c, i, j]) - fd) < 1e-8
        assert float(g.W["h1_h1"][c, i, j]) == float(g.W["h1_h1"][c, j, i])
    assert not torch.einsum("ckk->ck", g.W["h1_h1"]).any()


def test_ep_estimate_of_lateral_weights_matches_the_ground_truth():
    net = _net()
    W, b = _params(net)
    x, d = _batch(10)
    ds = gradcheck.gradcheck(net, x, d, W, b, np.array([1e-5, 1e-4, 1e-3]),
                             ("one-sided", "symmetric"))
    lateral = ds.sel(param="W_h1_h1", repeat=0)
    assert float(ds.true_norm.sel(param="W_h1_h1")) > 0
    assert float(lateral.cosine.sel(beta=1e-3).min()) > 0.9999
    for estimator, order in (("one-sided", 1), ("symmetric", 2)):
        errors = lateral.rel_error.sel(estimator=estimator)
        assert abs(gradcheck.loglog_slope(ds.beta, errors) - order) < 0.05


def test_backprop_baselines_and_lateral_weights():
    net = _net()
    W, b = _params(net)
    x, d = _batch(10)
    kw = dict(signs=np.ones(10), batch_size=5, x_test=x[:2])
    ff = FeedforwardEngine(net, dtype="float64").epoch(W, b, x, d, **kw)
    np.testing.assert_array_equal(ff[0]["h1_h1"], W["h1_h1"])  # not part of a feedforward net
    est, rel = Estimator("one-sided", 0.1), Relaxation(30, 4)
    rbp = RecurrentBackpropEngine(net, est, rel, dtype="float64").epoch(W, b, x, d, **kw)
    L = rbp[0]["h1_h1"]
    assert np.abs(L - W["h1_h1"]).max() > 0
    np.testing.assert_allclose(L, L.swapaxes(1, 2), atol=1e-15)


def test_weights_dataset_round_trip_with_lateral_blocks(tmp_path):
    from cortex_ep import io

    net = _net()
    W, b = _params(net)
    ds = weights_dataset(net, W, b)
    assert ds.L_h1.dims == ("h1_column", "h1_pre", "h1_post")
    assert ds.h1_column.values.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    back = io.read_dataset(io.write_dataset(ds, tmp_path / "w.nc"))
    xr.testing.assert_identical(back, ds)
    W2, b2 = params_from_weights(net, back)
    for k in W:
        np.testing.assert_array_equal(W2[k], W[k])
    other = layered([6, 9, 3], [0.1, 0.05], columns={1: 3}, name="no_lateral")
    with pytest.raises(ValueError, match="from another model"):
        params_from_weights(layered([6, 8, 3], [0.1, 0.1]), back)
    assert set(params_from_weights(other, back)[0]) == {"x_h1", "h1_y"}
