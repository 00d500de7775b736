"""The README's script example, run as written (in the torch twin, the same equations
as its default Brian2 engine), keeps reaching the accuracy the README states."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def _example() -> str:
    text = README.read_text()
    found = re.search(r"## Defining a network in a script\n\n```python\n(.*?)```", text, re.S)
    assert found, "README.md lost its 'Defining a network in a script' example"
    return found.group(1)


def test_readme_example_reaches_90_percent(tmp_path, monkeypatch):
    code = _example()
    assert code.count("TrainConfig(") == 1 and code.count('out="runs/mine"') == 1
    # only the engine (Brian2 -> its torch twin, for speed) and the output folder change
    code = code.replace("TrainConfig(", 'TrainConfig(engine="torch", ')
    code = code.replace('out="runs/mine"', f'out={str(tmp_path / "mine")!r}')
    code = code.replace("print(history.test_accuracy.values)", "")
    monkeypatch.chdir(tmp_path)
    namespace = {}
    exec(compile(code, str(README), "exec"), namespace)
    accuracy = namespace["history"].test_accuracy.values
    assert accuracy[-1] >= 0.90, accuracy
    assert (tmp_path / "mine" / "history.nc").exists()


def test_projection_defaults_are_the_validated_ones():
    from cortex_ep.models import two_layer

    from cortex_ep import Network, Population, Projection
    from cortex_ep.model.defaults import INIT_GAIN, default_lr

    net = Network((Population("x", 784, "input"), Population("h", 500, "hidden"),
                   Population("y", 10, "output")), (Projection("x", "h"), Projection("h", "y")))
    assert tuple(p.lr for p in net.projections) == two_layer.LEARNING_RATES
    assert all(p.init_gain == INIT_GAIN == two_layer.INIT_GAIN for p in net.projections)
    # explicit values are kept; larger presynaptic populations get smaller rates
    assert Network(net.populations, (Projection("x", "h", lr=0.3, init_gain=1.0),
                                     Projection("h", "y"))).projections[0].lr == 0.3
    assert default_lr(4 * 784, "hidden") == 0.2 and default_lr(100, "output") == 0.05
