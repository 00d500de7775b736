"""Ready network definitions, importable as ``cortex_ep.models``.

Each module defines ``network()`` returning a :class:`cortex_ep.model.spec.Network`
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

from cortex_ep.model.neurons import SETTINGS

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
        try:
            spec.loader.exec_module(module)
        except Exception as err:  # the user's file: report where it failed, not a traceback
            raise ValueError(f"model file {path} failed to import: "
                             f"{_where(err, path)}") from None
    else:
        key = ALIASES.get(name, name)
        if key not in available():
            raise ValueError(f"unknown model {name!r}; choose one of "
                             f"{', '.join(available() + list(ALIASES))} or give a .py file")
        module = importlib.import_module(f"{__name__}.{key}")
    if not callable(getattr(module, "network", None)):
        raise ValueError(f"model {name!r} defines no network() function")
    return module


def tuned_learning_rates(module, engine: str, plasticity: str = "phase",
                         neurons: str = "rate", beta: float | None = None,
                         feedback_learning: str = "shared"):
    """The rates a model validated for this way of training, or None for the
    network's own (``LEARNING_RATES``, EP with the phase rule at the model's β).

    In order: the engine's (``ENGINE_LEARNING_RATES``: recurrent and feedforward
    backprop), the continual rule's (``CONTINUAL_LEARNING_RATES``), spiking
    neurons' (``SPIKING_LEARNING_RATES``, ``IF_LEARNING_RATES``), and for EP with rate units and
    ``|beta| <= SMALL_BETA`` the small-β rates (``SMALL_BETA_LEARNING_RATES``).  Kolen–Pollack
    feedback learning with the phase rule and rate units takes
    ``KOLEN_POLLACK_LEARNING_RATES``.
    """
    rates = getattr(module, "ENGINE_LEARNING_RATES", {}).get(engine)
    if plasticity == "continual":
        rates = getattr(module, "CONTINUAL_LEARNING_RATES", rates)
    if neurons in SETTINGS:
        return getattr(module, f"{SETTINGS[neurons]}_LEARNING_RATES", rates)
    if rates is None and feedback_learning == "kolen-pollack":
        rates = getattr(module, "KOLEN_POLLACK_LEARNING_RATES", None)
    if (rates is None and beta is not None
            and abs(beta) <= getattr(module, "SMALL_BETA", float("-inf"))):
        rates = getattr(module, "SMALL_BETA_LEARNING_RATES", None)
    return rates


def build_network(module, *args, **kwargs):
    """Call a model module's ``network()`` and check that it returns a ``Network``.

    Raises
    ------
    ValueError
        Naming the model's file and the line where ``network()`` failed (or
        where it is defined, if it returned something else than a
        :class:`cortex_ep.model.spec.Network`).
    """
    from cortex_ep.model.spec import Network

    path = Path(getattr(module, "__file__", None) or module.__name__)
    try:
        net = module.network(*args, **kwargs)
    except Exception as err:
        raise ValueError(f"network() of model file {path} failed: "
                         f"{_where(err, path)}") from None
    if not isinstance(net, Network):
        code = getattr(module.network, "__code__", None)
        line = f", line {code.co_firstlineno}" if code is not None else ""
        raise ValueError(f"network() of model file {path}{line} returned "
                         f"{type(net).__name__} {_short(net)}, not a cortex_ep Network "
                         "(build one with cortex_ep.Network or cortex_ep.layered)")
    return net


def _where(err: Exception, path: Path) -> str:
    """``"line N: Kind: message"`` for an exception raised by the code of ``path``.

    For a syntax error the line is the error's own; otherwise the deepest
    traceback frame inside ``path`` (the model's line that led to the error).
    """
    line = None
    if isinstance(err, SyntaxError) and err.lineno is not None:
        line, message = err.lineno, err.msg
    else:
        message = str(err)
        target = str(Path(path).resolve())
        tb = err.__traceback__
        while tb is not None:
            if str(Path(tb.tb_frame.f_code.co_filename).resolve()) == target:
                line = tb.tb_lineno
            tb = tb.tb_next
    where = f"line {line}: " if line is not None else ""
    return f"{where}{type(err).__name__}: {message}"


def _short(value, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."
