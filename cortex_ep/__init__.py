"""cortex_ep: Equilibrium Propagation as leaky neuron dynamics.

The public API:

- :mod:`cortex_ep.spec` — populations, projections, :class:`Network`
- :mod:`cortex_ep.energy` — ρ, E, C, F and the projected dynamics (the reference)
- :mod:`cortex_ep.estimators` — one-sided, symmetric and random-sign EP
- :mod:`cortex_ep.data` — the embedded MNIST subset and IDX files
- :mod:`cortex_ep.brian` — the Brian2 engine
- :mod:`cortex_ep.twin` — the torch twin, ground-truth gradients, backprop baselines
- :mod:`cortex_ep.train` — the learning loop; :mod:`cortex_ep.traces` — recordings
- :mod:`cortex_ep.checkpoint` — per-epoch checkpoints and resuming;
  :mod:`cortex_ep.health` — divergence and non-convergence checks
- :mod:`cortex_ep.results` — open a run directory as xarray objects;
  :mod:`cortex_ep.columns` — column-level analyses
"""

__version__ = "0.1.0"

from .estimators import Estimator  # noqa: E402
from .reference import Relaxation  # noqa: E402
from .spec import Network, Population, Projection, SpecError, layered  # noqa: E402

__all__ = ["Estimator", "Network", "Population", "Projection", "Relaxation", "SpecError",
           "layered", "__version__"]
