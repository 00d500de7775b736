"""Old module paths, from before the package was laid out by layer, keep working.

``import cortex_ep.train`` (or ``from cortex_ep.results import open_run``)
gives a stand-in module that forwards every attribute to the module's new home
and warns once with a :class:`DeprecationWarning` that names the new path.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import types
import warnings

#: old path -> new path; a path below an old package maps below the new one
MOVED = {
    "cortex_ep.spec": "cortex_ep.model.spec",
    "cortex_ep.defaults": "cortex_ep.model.defaults",
    "cortex_ep.energy": "cortex_ep.model.energy",
    "cortex_ep.dynamics": "cortex_ep.model.dynamics",
    "cortex_ep.estimators": "cortex_ep.model.estimators",
    "cortex_ep.plasticity": "cortex_ep.model.plasticity",
    "cortex_ep.spiking": "cortex_ep.model.neurons",
    "cortex_ep.fetch": "cortex_ep.data.fetch",
    "cortex_ep.augment": "cortex_ep.data.augment",
    "cortex_ep.reference": "cortex_ep.engines.reference",
    "cortex_ep.brian": "cortex_ep.engines.brian",
    "cortex_ep.twin": "cortex_ep.engines.twin",
    "cortex_ep.traces": "cortex_ep.recordings.traces",
    "cortex_ep.results": "cortex_ep.recordings.run",
    "cortex_ep.run_figures": "cortex_ep.recordings.figures",
    "cortex_ep.columns": "cortex_ep.recordings.columns",
    "cortex_ep.train": "cortex_ep.learning.loop",
    "cortex_ep.checkpoint": "cortex_ep.learning.checkpoint",
    "cortex_ep.health": "cortex_ep.learning.health",
    "cortex_ep.lr_schedule": "cortex_ep.learning.schedule",
    "cortex_ep.weights": "cortex_ep.learning.weights",
    "cortex_ep.gradcheck": "cortex_ep.gradients.gradcheck",
    "cortex_ep.gradcheck_continual": "cortex_ep.gradients.continual",
    "cortex_ep.cli_data": "cortex_ep.cli.data",
    "cortex_ep.cli_gradcheck": "cortex_ep.cli.gradcheck",
    "cortex_ep.cli_messages": "cortex_ep.cli.messages",
    "cortex_ep.cli_run": "cortex_ep.cli.run",
}


def new_path(old: str) -> str | None:
    """The new dotted path of an old module path, or None if it did not move.

    >>> new_path("cortex_ep.brian.engine")
    'cortex_ep.engines.brian.engine'
    >>> new_path("cortex_ep.data") is None
    True
    """
    parts = old.split(".")
    for i in range(len(parts), 1, -1):
        head = ".".join(parts[:i])
        if head in MOVED:
            return ".".join([MOVED[head], *parts[i:]])
    return None


class _Forward(types.ModuleType):
    """A module that reads (and writes) its attributes on another module."""

    def __init__(self, name: str, target: types.ModuleType):
        super().__init__(name, target.__doc__)
        object.__setattr__(self, "_target", target)

    def __getattr__(self, name):
        return getattr(object.__getattribute__(self, "_target"), name)

    def __setattr__(self, name, value):
        if name.startswith("__"):  # the import system's own bookkeeping
            object.__setattr__(self, name, value)
        else:  # monkeypatching through the old path reaches the real module
            setattr(object.__getattribute__(self, "_target"), name, value)

    def __dir__(self):
        return dir(object.__getattribute__(self, "_target"))


class _ForwardTrain(_Forward):
    """``cortex_ep.train`` was the loop's module and is now the loop itself:
    importing the old module path must not break ``cortex_ep.train(...)``."""

    def __call__(self, *args, **kwargs):
        return object.__getattribute__(self, "_target").train(*args, **kwargs)


class _Loader(importlib.abc.Loader):
    def __init__(self, new: str):
        self.new = new

    def create_module(self, spec):
        frame, level = sys._getframe(1), 2
        while frame is not None and (frame.f_code.co_filename.startswith("<frozen")
                                     or frame.f_code.co_filename == __file__):
            frame, level = frame.f_back, level + 1
        warnings.warn(f"{spec.name} is now {self.new}: import it from there (a script's "
                      "names come from cortex_ep itself, e.g. from cortex_ep import train)",
                      DeprecationWarning, stacklevel=level)
        target = importlib.import_module(self.new)
        kind = _ForwardTrain if spec.name == "cortex_ep.train" else _Forward
        return kind(spec.name, target)

    def exec_module(self, module):
        pass


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):
        new = new_path(fullname) if fullname.startswith("cortex_ep.") else None
        return None if new is None else importlib.util.spec_from_loader(fullname,
                                                                         _Loader(new))


def install() -> None:
    """Put the finder first on ``sys.meta_path`` (once), ahead of the file finders."""
    if not any(isinstance(f, _Finder) for f in sys.meta_path):
        sys.meta_path.insert(0, _Finder())
