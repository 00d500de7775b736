"""Weights files: every parameter of a network as one xarray Dataset, and back.

``W_<pre>_<post>`` (dims ``<pre>_unit``, ``<post>_unit``), ``b_<pop>``,
lateral blocks ``L_<pop>`` and separate feedback matrices ``B_<pre>_<post>``.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from ..model import energy
from ..model.spec import Network


def weights_dataset(net: Network, W: dict, b: dict, attrs=None) -> xr.Dataset:
    """Weights ``W_<pre>_<post>`` (dims ``<pre>_unit``, ``<post>_unit``), biases ``b_<pop>``,
    lateral blocks ``L_<pop>`` (dims ``<pop>_column``, ``<pop>_pre``, ``<pop>_post``) and
    separate feedback matrices ``B_<pre>_<post>`` (in ``W``'s layout: tied is ``B = W``).

    Every ``<pop>_unit`` dimension carries a ``<pop>_column`` coordinate.
    """
    data = {f"W_{p.name}": ((f"{p.pre}_unit", f"{p.post}_unit"), W[p.name])
            for p in net.projections}
    data.update({f"b_{pop.name}": (f"{pop.name}_unit", b[pop.name]) for pop in net.dynamic})
    data.update({f"L_{pop.name}": ((f"{pop.name}_column", f"{pop.name}_pre",
                                    f"{pop.name}_post"), W[energy.lateral_name(pop.name)])
                 for pop in net.lateral})
    data.update({energy.param_label(energy.feedback_name(p.name)):
                 ((f"{p.pre}_unit", f"{p.post}_unit"), W[energy.feedback_name(p.name)])
                 for p in net.separate})
    coords = {f"{pop.name}_column": (f"{pop.name}_unit",
                                     np.asarray(pop.column_of_units(), np.int64))
              for pop in net.populations}
    return xr.Dataset(data, coords=coords, attrs={"units": "1", **(attrs or {})})


def params_from_weights(net: Network, ds: xr.Dataset):
    """Inverse of :func:`weights_dataset`; ``ValueError`` if ``ds`` is another network's."""
    W, b = {}, {}
    wanted = [(f"W_{p.name}", p.name, (net[p.pre].size, net[p.post].size))
              for p in net.projections]
    wanted += [(f"L_{p.name}", energy.lateral_name(p.name),
                (p.n_columns, p.column_size, p.column_size)) for p in net.lateral]
    wanted += [(energy.param_label(energy.feedback_name(p.name)), energy.feedback_name(p.name),
                (net[p.pre].size, net[p.post].size)) for p in net.separate]
    wanted += [(f"b_{p.name}", p.name, (p.size,)) for p in net.dynamic]
    for var, key, shape in wanted:
        if var not in ds or ds[var].shape != shape:
            found = "missing" if var not in ds else f"of shape {ds[var].shape}"
            raise ValueError(f"the weights do not fit network {net.name!r} ({net.describe()}):"
                             f" {var} should have shape {shape}, it is {found}; they come "
                             "from another model")
        (b if var.startswith("b_") else W)[key] = ds[var].values.copy()
    return W, b
