"""How the free and nudged phases are integrated: steps, noise and activation."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import energy


@dataclass(frozen=True)
class Relaxation:
    """How the phases are integrated.

    Parameters
    ----------
    free_steps, nudged_steps : int
        Euler steps of ``dt`` in the free and in each nudged phase.
    noise : float
        σ of the Wiener term (dimensionless; the noise term of :mod:`cortex_ep.model.energy`).
    activation : str
        Name of ρ (see :data:`cortex_ep.model.energy.ACTIVATIONS`).
    """

    free_steps: int = 20
    nudged_steps: int = 4
    noise: float = 0.0
    activation: str = "hard_sigmoid"

    def __post_init__(self):
        for name in ("free_steps", "nudged_steps"):
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or v < 1:
                raise ValueError(f"{name} = {v!r}: need a whole number of Euler steps >= 1")
        if not np.isfinite(self.noise) or self.noise < 0:
            raise ValueError(f"noise = {self.noise!r}: σ must be finite and >= 0")
        energy.get_activation(self.activation)
