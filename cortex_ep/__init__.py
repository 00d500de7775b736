"""cortex_ep: Equilibrium Propagation as leaky neuron dynamics.

A user script needs only the names below::

    from cortex_ep import (Network, Population, Projection, layered, Estimator,
                           Relaxation, TrainConfig, train, load_digits, open_run)

The package is laid out by layer, each importing only from the layers below it
(the docs' architecture page): :mod:`cortex_ep.model` (description and
mathematics), :mod:`cortex_ep.data`, :mod:`cortex_ep.models` (ready networks),
:mod:`cortex_ep.engines` (Brian2, the torch twin, the numpy reference),
:mod:`cortex_ep.recordings`, :mod:`cortex_ep.learning`,
:mod:`cortex_ep.gradients`, :mod:`cortex_ep.sweeps` and :mod:`cortex_ep.cli`;
:mod:`cortex_ep.io` (atomic files) serves them all.
"""

__version__ = "0.1.0"

from . import _moved  # noqa: E402  (old module paths keep working, with a warning)
from .data.sources import load as load_digits  # noqa: E402
from .model.estimators import Estimator  # noqa: E402
from .model.relaxation import Relaxation  # noqa: E402
from .model.spec import Network, Population, Projection, SpecError, layered  # noqa: E402

#: public names whose modules bring xarray, imported on first use so that
#: ``cortex-ep --help`` and the description classes stay quick to import
_LAZY = {"TrainConfig": "cortex_ep.learning.loop", "train": "cortex_ep.learning.loop",
         "open_run": "cortex_ep.recordings.run"}

__all__ = ["Estimator", "Network", "Population", "Projection", "Relaxation", "SpecError",
           "TrainConfig", "layered", "load_digits", "open_run", "train", "__version__"]

_moved.install()


def __getattr__(name):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'cortex_ep' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
