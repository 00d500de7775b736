"""Devices, dtypes and tensors for the torch twin.

The relaxation itself is :mod:`cortex_ep.model.dynamics`, the same code the numpy
reference runs; this module only moves parameters to and from torch.
"""

from __future__ import annotations

import numpy as np
import torch

DTYPES = {"float32": torch.float32, "float64": torch.float64}


def resolve_device(device: str) -> torch.device:
    """A torch device, with a clear error when CUDA is asked for but absent."""
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise ValueError(f"unknown device {device!r}; use cpu, cuda or cuda:N") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} asked for, but this torch has no usable CUDA "
                         "GPU; use --device cpu")
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"device {device!r} is not supported; use cpu or cuda")
    return dev


def resolve_dtype(dtype: str) -> torch.dtype:
    try:
        return DTYPES[dtype]
    except KeyError:
        raise ValueError(f"unknown dtype {dtype!r}; choose float32 or float64") from None


def to_tensors(params: dict, device, dtype) -> dict:
    return {k: torch.as_tensor(np.asarray(v), device=device, dtype=dtype).clone()
            for k, v in params.items()}


def to_numpy(params: dict) -> dict:
    return {k: v.detach().cpu().numpy().astype(np.float64) for k, v in params.items()}
