"""The validated defaults a network inherits when its script leaves them out.

A :class:`~cortex_ep.model.spec.Projection` written without ``lr`` or ``init_gain``
gets the values validated for 784-500-10 (``models/two_layer.py``, chosen on
a validation split of the training digits): initial scale 0.5 of the Glorot
range, rate 0.4 into a hidden population and 0.05 into the output.

The rate is per synapse, while what a learning step changes in a post unit is
its summed input current, which grows with the number of presynaptic units.
A projection from a population larger than the reference one (784 pixels
into a hidden layer, 500 hidden units into the output) therefore gets its rate
scaled by ``sqrt(reference / pre_size)``; a smaller one keeps the validated
rate, so that no default is extrapolated beyond what was measured.  Deeper
networks should still tune their rates (``analyses/tune_learning_rates.py``).
"""

from __future__ import annotations

import math
from dataclasses import replace

#: scale of the Glorot-uniform initial weights: at the full scale the units of
#: deeper networks start pinned at 0 or 1 and the EP signal vanishes
INIT_GAIN = 0.5
#: validated rates by the role of the post population, and the presynaptic size
#: they were validated at
LEARNING_RATES = {"hidden": 0.4, "output": 0.05}
REFERENCE_PRE_SIZE = {"hidden": 784, "output": 500}
#: λ of Kolen–Pollack feedback learning (per unit learning rate, per batch): chosen
#: for 784-500-10 with its Kolen–Pollack rates (``models/two_layer.py``) on a
#: validation split (``analyses/feedback_learning.py --split validation --tune``)
KOLEN_POLLACK_DECAY = 0.005


def default_lr(pre_size: int, post_role: str) -> float:
    """The default learning rate of a projection from ``pre_size`` units into a
    population of role ``post_role`` (``hidden`` or ``output``)."""
    base, ref = LEARNING_RATES[post_role], REFERENCE_PRE_SIZE[post_role]
    return base * min(1.0, math.sqrt(ref / pre_size))


def inherit_defaults(proj, populations: dict):
    """``proj`` with its unset ``lr`` / ``init_gain`` (and a Kolen–Pollack
    projection's ``feedback_decay``) filled in.

    ``populations`` maps names to :class:`~cortex_ep.model.spec.Population`; a
    projection naming an unknown or invalid population is returned unchanged
    for :meth:`~cortex_ep.model.spec.Network.validate` to report.
    """
    changes = {}
    if proj.init_gain is None:
        changes["init_gain"] = INIT_GAIN
    pre, post = populations.get(proj.pre), populations.get(proj.post)
    if (proj.lr is None and pre is not None and post is not None
            and post.role in LEARNING_RATES and isinstance(pre.size, int)
            and not isinstance(pre.size, bool) and pre.size > 0):
        changes["lr"] = default_lr(pre.size, post.role)
    if proj.feedback_learning == "kolen-pollack" and proj.feedback_decay is None:
        changes["feedback_decay"] = KOLEN_POLLACK_DECAY
    return replace(proj, **changes) if changes else proj
