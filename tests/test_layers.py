"""The package is laid out by layer: every import points to the module's own layer or
one below it, and no two files import each other, directly or round a longer loop.

The layer order is read from the docs' architecture page, where it is written once.
Imports inside functions count (they run all the same); a model file's
``if __name__ == "__main__":`` block does not (it runs only as a script).
"""

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ARCHITECTURE = ROOT / "docs" / "architecture.rst"
#: where each top-level package lives on disk (``cortex_ep.models`` is ``models/``)
SOURCES = {"cortex_ep": ROOT / "cortex_ep", "cortex_ep.models": ROOT / "models"}


def layer_order(page: Path = ARCHITECTURE) -> list[str]:
    """The layers, bottom first, from the numbered list ``N. **name** (...) — ...``."""
    names = re.findall(r"^\d+\. \*\*([\w.]+)\*\*", page.read_text(), re.M)
    assert names, f"{page} lists no layers (lines like '1. **io** (...) — ...')"
    return names


def modules(sources: dict) -> dict:
    """``{dotted module name: path}`` for every .py file of the packages."""
    found = {}
    for package, directory in sources.items():
        for path in sorted(directory.rglob("*.py")):
            parts = list(path.relative_to(directory).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join([package, *parts])] = path
    return found


def _script_block(node) -> bool:
    test = getattr(node, "test", None)
    return (isinstance(node, ast.If) and isinstance(test, ast.Compare)
            and isinstance(test.left, ast.Name) and test.left.id == "__name__")


def _imports(tree):
    """Every Import / ImportFrom node outside ``if __name__ == ...`` blocks."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if _script_block(node):
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        stack.extend(ast.iter_child_nodes(node))


def imports_of(name: str, path: Path, known: dict) -> set:
    """The package modules that module ``name`` (file ``path``) imports."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = set()
    for node in _imports(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[:len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            # `from pkg import sub` imports the module pkg.sub when there is one
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base
                       for a in node.names]
        for target in targets:
            while target and target not in known:  # `import a.b.c` -> deepest known
                target = target.rpartition(".")[0]
            if target and target != name:
                out.add(target)
    return out


def layer_of(module: str, layers: list[str]) -> str:
    rest = module.split(".")[1:]
    if not rest or rest[0].startswith("_"):
        return "cortex_ep"  # the package's own __init__ and its private helpers
    return rest[0]


def violations(sources: dict, layers: list[str]) -> tuple[list, list]:
    """``(upward imports, cycles)``, each a list of readable strings."""
    known = modules(sources)
    graph = {name: imports_of(name, path, known) for name, path in known.items()}
    rank = {layer: i for i, layer in enumerate(layers)}
    unplaced = sorted({layer_of(m, layers) for m in known} - set(rank))
    assert not unplaced, f"modules in no layer of {ARCHITECTURE.name}: {unplaced}"
    upward = [f"{a} ({layer_of(a, layers)}) imports {b} ({layer_of(b, layers)})"
              for a, targets in sorted(graph.items()) for b in sorted(targets)
              if rank[layer_of(b, layers)] > rank[layer_of(a, layers)]]
    return upward, _cycles(graph)


def _cycles(graph: dict) -> list:
    """One loop per strongly connected group of files (Tarjan's algorithm)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(" <-> ".join(sorted(group)))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(found)


def test_no_upward_import_and_no_cycle():
    upward, cycles = violations(SOURCES, layer_order())
    assert not upward, "imports from a layer above:\n" + "\n".join(upward)
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_only_cross_layer_modules_sit_beside_the_package_init():
    beside = sorted(p.name for p in (ROOT / "cortex_ep").glob("*.py"))
    assert beside == ["__init__.py", "_moved.py", "io.py", "sweeps.py"], beside


def test_every_package_folder_is_installed():
    """A folder missing from pyproject's package list would be left out of a wheel."""
    listed = re.search(r"packages = \[(.*?)\]", (ROOT / "pyproject.toml").read_text(), re.S)
    listed = set(re.findall(r'"([\w.]+)"', listed.group(1)))
    folders = {name for name, path in modules(SOURCES).items() if path.name == "__init__.py"}
    assert folders == listed


def _write(root: Path, files: dict) -> dict:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return {"cortex_ep": root}


def test_the_check_finds_an_upward_import_and_a_cycle(tmp_path):
    sources = _write(tmp_path, {
        "__init__.py": "",
        "model/__init__.py": "",
        "model/spec.py": "def f():\n    from ..learning import loop\n",
        "model/energy.py": "from . import spec\nfrom .dynamics import step\n",
        "model/dynamics.py": "from .energy import E\n",
        "learning/__init__.py": "",
        "learning/loop.py": "from ..model import spec\n",
    })
    upward, cycles = violations(sources, ["model", "learning", "cortex_ep"])
    assert upward == ["cortex_ep.model.spec (model) imports cortex_ep.learning.loop (learning)"]
    assert cycles == ["cortex_ep.learning.loop <-> cortex_ep.model.spec",
                      "cortex_ep.model.dynamics <-> cortex_ep.model.energy"]


def test_a_script_block_is_not_an_import(tmp_path):
    sources = _write(tmp_path, {
        "__init__.py": "",
        "model/__init__.py": "",
        "model/spec.py": "if __name__ == '__main__':\n    from ..learning import loop\n",
        "learning/__init__.py": "",
        "learning/loop.py": "from ..model import spec\n",
    })
    assert violations(sources, ["model", "learning", "cortex_ep"]) == ([], [])


@pytest.fixture
def forget_old_paths():
    """Each test imports the old paths as if for the first time, and leaves no trace:
    the stand-in modules and the package attributes they set are undone afterwards."""
    import sys

    import cortex_ep

    def is_old(name):
        return cortex_ep._moved.new_path(name) is not None

    before_modules = {n: m for n, m in sys.modules.items() if is_old(n)}
    before_attrs = dict(vars(cortex_ep))
    for name in before_modules:
        del sys.modules[name]
    yield
    for name in [n for n in sys.modules if is_old(n)]:
        del sys.modules[name]
    sys.modules.update(before_modules)
    for name in set(vars(cortex_ep)) - set(before_attrs):
        delattr(cortex_ep, name)
    for name, value in before_attrs.items():
        setattr(cortex_ep, name, value)


@pytest.mark.parametrize("old, new", [("cortex_ep.train", "cortex_ep.learning.loop"),
                                      ("cortex_ep.results", "cortex_ep.recordings.run"),
                                      ("cortex_ep.spiking", "cortex_ep.model.neurons"),
                                      ("cortex_ep.brian.engine",
                                       "cortex_ep.engines.brian.engine")])
def test_old_module_paths_still_work_and_name_the_new_one(old, new, forget_old_paths):
    import importlib
    import subprocess
    import sys

    # a fresh interpreter: the old path is imported for the first time there
    code = (f"import warnings; warnings.simplefilter('always')\n"
            f"with warnings.catch_warnings(record=True) as caught:\n    import {old}\n"
            "print(*(w.message for w in caught), sep='\\n')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert f"{old} is now {new}" in out
    with pytest.warns(DeprecationWarning):
        old_module = importlib.import_module(old)
    assert dir(old_module) == dir(importlib.import_module(new))


def test_the_old_train_module_path_leaves_train_callable(forget_old_paths):
    import warnings

    import cortex_ep

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from cortex_ep.train import TrainConfig, train  # noqa: F401  (the old spelling)
    from cortex_ep.learning.loop import train as loop_train

    assert train is loop_train and callable(cortex_ep.train)
    assert cortex_ep.TrainConfig is TrainConfig
