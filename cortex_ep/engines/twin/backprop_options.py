"""The backprop baseline's choices: hidden activations and losses.

Importable without importing torch (as :mod:`cortex_ep.engines.brian.targets` is
without Brian2), so that ``cortex-ep --help`` and argument checks stay fast;
:mod:`cortex_ep.engines.twin.backprop` implements each of them.
"""

#: hidden activations of the feedforward baseline (``cortex-ep train --bp-activation``)
BP_ACTIVATIONS = ("hard_sigmoid", "logistic", "relu", "tanh")
#: losses of the feedforward baseline (``cortex-ep train --bp-loss``)
BP_LOSSES = ("cross_entropy", "mse")
