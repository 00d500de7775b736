"""The engines by name, and the one a run's settings ask for.

``brian`` and ``torch`` run EP (Brian2, the torch twin), ``numpy`` the EP
reference; ``rbp`` trains the same energy-based network with the exact
gradient; ``backprop`` a feedforward network of the same populations.  Torch
and Brian2 are imported only when their engine is made.
"""

from __future__ import annotations

from ..model.plasticity import Plasticity
from ..model.spec import Network
from .reference import ReferenceEngine

ENGINES = ("brian", "torch", "numpy", "rbp", "backprop")
#: engines whose networks have EP's dynamics (they can record traces)
ENERGY_ENGINES = ("brian", "torch", "numpy", "rbp")
#: engines that learn by EP's local rule (they take a plasticity rule)
EP_ENGINES = ("brian", "torch", "numpy")
#: engines that run spiking neurons (``--neurons spiking``, ``--neurons if``)
SPIKING_ENGINES = ("brian", "torch")
#: the twin's spiking units learn by the phase rule only
SPIKING_CONTINUAL = ("under --plasticity continual, spiking neurons run in the Brian2 engine "
                     "only: use --engine brian, or --plasticity phase in the torch twin")


def make_engine(net: Network, config):
    """The engine object for ``config.engine`` (imports torch only when needed).

    ``config`` is a :class:`cortex_ep.learning.loop.TrainConfig` (or any object with
    its fields ``engine``, ``estimator``, ``relaxation``, ``seed``, ``plasticity``,
    ``target``, ``spiking``, ``device``, ``dtype``, ``bp_activation``, ``bp_loss``).
    """
    est, rel, seed = config.estimator, config.relaxation, config.seed
    rule = Plasticity(config.plasticity)
    if config.engine == "numpy":
        return ReferenceEngine(net, est, rel, seed, plasticity=rule)
    if config.engine == "brian":
        from .brian.engine import BrianEngine

        return BrianEngine(net, est, rel, target=config.target, seed=seed, plasticity=rule,
                           spikes=config.spiking)
    torch_kw = dict(device=config.device, dtype=config.dtype, seed=seed)
    if config.engine == "torch":
        from .twin.engine import TorchEngine

        return TorchEngine(net, est, rel, plasticity=rule, spikes=config.spiking, **torch_kw)
    from .twin.backprop import FeedforwardEngine, RecurrentBackpropEngine

    if config.engine == "rbp":
        return RecurrentBackpropEngine(net, est, rel, **torch_kw)
    return FeedforwardEngine(net, config.bp_activation, config.bp_loss, **torch_kw)
