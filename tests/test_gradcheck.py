"""EP estimates against the ground truth: orders of the bias, kinks, the report."""

import numpy as np
import pytest
import xarray as xr

from cortex_ep import data
from cortex_ep.gradients import gradcheck
from cortex_ep.model.spec import layered


def _problem(scale=0.3, seed=1):
    net = layered([5, 4, 3], [1.0, 1.0], name="tiny")
    rng = np.random.default_rng(seed)
    W = {p.name: scale * rng.standard_normal((net[p.pre].size, net[p.post].size))
         for p in net.projections}
    b = {pop.name: np.full(pop.size, 0.4) for pop in net.dynamic}
    x = rng.uniform(0, 1, (4, 5))
    d = data.one_hot(np.array([0, 2, 1, 0]), 3)
    return net, W, b, x, d


def test_bias_orders_one_and_two():
    net, W, b, x, d = _problem()
    betas = [1e-5, 1e-4, 1e-3]
    ds = gradcheck.gradcheck(net, x, d, W, b, betas)
    for param in ds.param.values:
        one = gradcheck.loglog_slope(ds.beta, ds.rel_error.sel(estimator="one-sided",
                                                                param=param, repeat=0))
        two = gradcheck.loglog_slope(ds.beta, ds.rel_error.sel(estimator="symmetric",
                                                                param=param, repeat=0))
        assert abs(one - 1) < 0.05, (param, one)
        assert abs(two - 2) < 0.1, (param, two)
    assert float(ds.cosine.sel(beta=1e-3).min()) > 0.9999
    assert int(ds.kink_crossings.sum()) == 0
    assert ds.attrs["free_residual"] < 1e-17


def test_float64_and_long_double_agree_away_from_the_rounding_floor():
    net, W, b, x, d = _problem()
    ld = gradcheck.gradcheck(net, x, d, W, b, [1e-2], ("symmetric",))
    f64 = gradcheck.gradcheck(net, x, d, W, b, [1e-2], ("symmetric",), precision="float64")
    np.testing.assert_allclose(f64.rel_error, ld.rel_error, rtol=1e-4)
    assert f64.attrs["precision"] == "float64"


def test_large_beta_crosses_kinks_and_breaks_down():
    net, W, b, x, d = _problem(scale=0.6)
    ds = gradcheck.gradcheck(net, x, d, W, b, [1e-4, 2.0], ("one-sided",))
    assert int(ds.kink_crossings.sel(beta=2.0).sum()) > 0
    assert gradcheck.breakdown_beta(ds, "one-sided") == 2.0
    assert int(ds.boundary_units.sum()) > 0


def test_noise_repeats_and_random_sign():
    net, W, b, x, d = _problem()
    ds = gradcheck.gradcheck(net, x, d, W, b, [0.05, 0.5], ("random-sign", "one-sided"),
                             noise=0.02, repeats=3, seed=1, noisy_steps=(60, 30))
    assert ds.sizes == {"beta": 2, "estimator": 2, "repeat": 3, "param": 4, "layer": 2}
    # noise makes repeats differ; for the one-sided estimate its share shrinks like σ/β
    # (random-sign also varies with the drawn signs, whose effect grows with β)
    spread = ds.rel_error.std("repeat").mean("param")
    assert float(spread.sel(estimator="one-sided", beta=0.05)) > float(
        spread.sel(estimator="one-sided", beta=0.5)) > 0
    assert float(spread.sel(estimator="random-sign", beta=0.5)) > 0


def test_report_and_round_trip(tmp_path):
    from cortex_ep import io

    net, W, b, x, d = _problem()
    ds = gradcheck.gradcheck(net, x, d, W, b, [1e-4, 1e-3])
    text = gradcheck.summarize(ds)
    assert "log-log slope" in text and "smallest β with relative error > 10%" in text
    path = io.write_dataset(ds, tmp_path / "gradcheck.nc")
    xr.testing.assert_identical(io.read_dataset(path), ds)


def test_default_betas_include_the_seed_values():
    betas = gradcheck.default_betas()
    assert betas.min() == pytest.approx(1e-5) and betas.max() == pytest.approx(1.0)
    for k in range(1, 10):
        assert np.any(np.isclose(betas, k * 1e-3))


def test_compare():
    cos, rel, sign = gradcheck.compare(np.array([1.0, 2.0, 0.0]), np.array([1.0, 2.0, 0.0]))
    assert (cos, rel, sign) == (pytest.approx(1.0), 0.0, 1.0)
    cos, rel, sign = gradcheck.compare(np.array([-1.0, 2.0]), np.array([1.0, 2.0]))
    assert cos == pytest.approx(3 / 5) and rel == pytest.approx(2 / np.sqrt(5))
    assert sign == 0.5
    with pytest.raises(ValueError, match="unknown precision"):
        gradcheck.gradcheck(*_problem(), [0.1], precision="half")
