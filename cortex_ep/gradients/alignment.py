"""How well separate feedback matches the forward weights, and what EP then estimates.

Two measures of a network with separate feedback matrices ``B`` (in ``W``'s
layout, so that tied feedback is ``B = W``):

- :func:`feedback_angle` — the angle between all forward matrices that have a
  separate feedback and their ``B``, taken as one vector each: 90° for
  independent random draws, 0° when they match;
- :func:`update_cosines` — the cosine of the one-sided EP update at small β to
  the exact gradient of the loss (implicit differentiation through the
  Jacobian, :mod:`cortex_ep.engines.twin.truth`), parameter by parameter.
  Without weight transport the update of the layers below a separate
  projection is no longer the gradient; this says by how much.
"""

from __future__ import annotations

import numpy as np

from ..model import energy
from ..model.spec import Network
from .gradcheck import gradcheck

#: β of the one-sided estimate that :func:`update_cosines` compares
GRADIENT_BETA = 0.01


def feedback_angle(net: Network, W: dict) -> float:
    """Angle in degrees between the forward and feedback matrices (NaN where tied).

    Parameters
    ----------
    W : dict of (N_pre, N_post) arrays, feedback matrices included
    """
    if not net.separate:
        return float("nan")
    forward = np.concatenate([np.ravel(W[p.name]) for p in net.separate])
    back = np.concatenate([np.ravel(W[energy.feedback_name(p.name)]) for p in net.separate])
    cos = forward @ back / (np.linalg.norm(forward) * np.linalg.norm(back))
    return float(np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))))


def update_cosines(net: Network, W: dict, b: dict, x, d, params,
                   beta: float = GRADIENT_BETA) -> np.ndarray:
    """Cosine of the one-sided EP update at ``beta`` to the exact gradient.

    Parameters
    ----------
    x : (batch, N_in) array; d : (batch, N_out) one-hot array
    params : sequence of str
        Parameter labels (``W_x_h1``, ``B_h1_y``, ``b_y``, …).

    Returns
    -------
    (len(params),) array; NaN for a label the network does not have.
    """
    ds = gradcheck(net, x, d, W, b, [beta], ("one-sided",), precision="float64")
    cos = ds.cosine.isel(beta=0, estimator=0, repeat=0)
    return np.array([float(cos.sel(param=p)) if p in cos.param else np.nan for p in params])
