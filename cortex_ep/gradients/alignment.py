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
import xarray as xr

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


def alignment_history(net: Network, history: xr.Dataset, weight_history: xr.Dataset, x, d,
                      params, cosines: bool = True) -> xr.Dataset:
    """``history`` with both measures at every epoch of ``weight_history``.

    Parameters
    ----------
    history : xr.Dataset over ``epoch``, a run's history (reindexed to the
        recorded epochs; epoch 0, the initial weights, has no history row)
    weight_history : xr.Dataset, the weights at each recorded epoch
        (:attr:`cortex_ep.recordings.run.Run.weight_history`)
    x, d : the batch of :func:`update_cosines`; params : its parameter labels
    cosines : bool
        ``False`` fills ``gradient_cosine`` with NaN (the angle alone is cheap).

    Returns
    -------
    xr.Dataset with ``alignment_angle`` (epoch, degrees) and ``gradient_cosine``
    (epoch, param) added.
    """
    from ..learning.weights import params_from_weights

    epochs = weight_history.epoch.values
    angles, cos = [], []
    for epoch in epochs:
        W, b = params_from_weights(net, weight_history.sel(epoch=epoch))
        angles.append(feedback_angle(net, W))
        cos.append(update_cosines(net, W, b, x, d, params) if cosines
                   else np.full(len(params), np.nan))
    history = history.reindex(epoch=epochs)
    history["alignment_angle"] = ("epoch", angles, {"units": "degree",
                                                    "long_name": "angle between W and B"})
    history["gradient_cosine"] = (("epoch", "param"), np.array(cos),
                                  {"long_name": f"cosine of the one-sided EP update at "
                                                f"β={GRADIENT_BETA} to the exact gradient"})
    return history.assign_coords(param=list(params))
