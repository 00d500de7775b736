import pytest

from cortex_ep.model.spec import (
    Network,
    Population,
    Projection,
    SpecError,
    layered,
    with_learning_rates,
)

X = Population("x", 4, "input")
H = Population("h", 3, "hidden")
Y = Population("y", 2, "output")


def net(pops=(X, H, Y), projs=(Projection("x", "h"), Projection("h", "y")), **kw):
    return Network(pops, projs, **kw)


def test_valid_network_views():
    n = net()
    assert n.layer_sizes == (4, 3, 2)
    assert n.order == ("x", "h", "y")
    assert [p.name for p in n.dynamic] == ["h", "y"]
    assert n.input is X and n.output is Y
    assert n.describe() == "4-3-2"
    # unset rates are the validated defaults: 0.4 into hidden, 0.05 into the output
    assert n.bias_lr("h") == 0.4 and n.bias_lr("y") == 0.05


@pytest.mark.parametrize("kwargs, message", [
    (dict(projs=(Projection("x", "h"), Projection("h", "z"))), "unknown population 'z'"),
    (dict(pops=(X, Population("h", 0, "hidden"), Y)), "size must be a positive integer"),
    (dict(pops=(X, Population("h", -3, "hidden"), Y)), "size must be a positive integer"),
    (dict(pops=(X, Population("h", 3, "hidden"), Population("h", 2, "output"))),
     "two populations are named 'h'"),
    (dict(pops=(X, Population("h", 3, "sideways"), Y)), "choose one of input, hidden"),
    (dict(pops=(X, H)), "exactly one output population"),
    (dict(pops=(Population("x", 4, "hidden"), H, Y)), "exactly one input population"),
    (dict(projs=(Projection("x", "h"), Projection("h", "h"), Projection("h", "y"))),
     "to itself"),
    (dict(projs=(Projection("x", "h"), Projection("h", "y"), Projection("y", "h"))),
     "coupled twice"),
    (dict(projs=(Projection("x", "h"), Projection("h", "y"), Projection("y", "x"))),
     "targets the input"),
    (dict(projs=(Projection("x", "h"),)), "'y' receives no current"),
    (dict(projs=(Projection("x", "h", lr=-1), Projection("h", "y"))), "learning rate"),
    (dict(tau=0.0), "tau must be a positive"),
    (dict(tau=-5.0), "tau must be a positive"),
    (dict(dt=10.0, tau=10.0), "not smaller than tau"),
    (dict(dt=0.0), "dt must be a positive"),
    (dict(pops=(X, Population("h", 3, "hidden", columns=2), Y)), "do not divide"),
    (dict(pops=(X, Population("h y", 3, "hidden"), Y)), "not a valid identifier"),
])
def test_validation_errors_name_the_fix(kwargs, message):
    with pytest.raises(SpecError, match=message):
        net(**kwargs)


def test_cycle_is_rejected():
    a, b, c = (Population(n, 2, "hidden") for n in "abc")
    projs = (Projection("x", "a"), Projection("a", "b"), Projection("b", "c"),
             Projection("c", "a"), Projection("c", "y"))
    with pytest.raises(SpecError, match="cycle"):
        Network((X, a, b, c, Y), projs)


def test_columns_layout():
    pop = Population("h", 6, "hidden", columns=3)
    assert pop.column_size == 2
    assert pop.column_of_units() == [0, 0, 1, 1, 2, 2]


def test_layered_and_learning_rates():
    n = layered([784, 500, 500, 10], [0.1, 0.05, 0.01])
    assert n.layer_sizes == (784, 500, 500, 10)
    assert [p.lr for p in n.projections] == [0.1, 0.05, 0.01]
    m = with_learning_rates(n, [0.3])
    assert [p.lr for p in m.projections] == [0.3] * 3
    with pytest.raises(SpecError, match="one per projection"):
        with_learning_rates(n, [0.1, 0.2])
    with pytest.raises(SpecError, match="learning rates"):
        layered([4, 3, 2], [0.1])


def test_bundled_models():
    from cortex_ep import models

    assert models.load("784-500-10").network().layer_sizes == (784, 500, 10)
    assert models.load("three_layer").network().layer_sizes == (784, 500, 500, 10)
    with pytest.raises(ValueError, match="unknown model 'nope'"):
        models.load("nope")
