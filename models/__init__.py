"""Ready network definitions, importable as ``cortex_ep.models``.

Each module defines ``network()`` returning a :class:`cortex_ep.spec.Network`
and ``TRAINING``, the training settings it was tuned with (``cortex-ep train``
uses them unless told otherwise).  Run a file to train it::

    python models/two_layer.py --epochs 3

Copy one to start your own; ``cortex-ep train --model path/to/file.py`` loads it.
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
from pathlib import Path

ALIASES = {"784-500-10": "two_layer", "784-500-500-10": "three_layer"}


def available() -> list[str]:
    """Names of the bundled models."""
    return sorted(m.name for m in pkgutil.iter_modules(__path__))


def load(name: str):
    """The model module for a bundled name, an alias like ``784-500-10``, or a ``.py`` path."""
    if str(name).endswith(".py"):
        path = Path(name)
        if not path.is_file():
            raise ValueError(f"model file {path} does not exist")
        spec = importlib.util.spec_from_file_location(f"cortex_ep_user_model_{path.stem}",
                                                      path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    else:
        key = ALIASES.get(name, name)
        if key not in available():
            raise ValueError(f"unknown model {name!r}; choose one of "
                             f"{', '.join(available() + list(ALIASES))} or give a .py file")
        module = importlib.import_module(f"{__name__}.{key}")
    if not callable(getattr(module, "network", None)):
        raise ValueError(f"model {name!r} defines no network() function")
    return module
