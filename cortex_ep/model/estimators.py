"""EP gradient estimators: one-sided, symmetric and random-sign.

Each estimator compares the rates of two phases, A and B, sample by sample:

=============  ==================  ==================  ===============
estimator      phase A             phase B             factor
=============  ==================  ==================  ===============
one-sided      nudged at +β        free (β = 0)        1 / β
random-sign    nudged at ±β        free                1 / (±β)
symmetric      nudged at +β        nudged at −β        1 / (2β)
=============  ==================  ==================  ===============

and estimates the *descent direction* −∂L/∂θ of the loss:

    ΔW = factor · (ρ(s_pre^A) ρ(s_post^A)ᵀ − ρ(s_pre^B) ρ(s_post^B)ᵀ)
    Δb = factor · (ρ(s^A) − ρ(s^B))
    ΔL = factor · (ρ(s_c^A) ρ(s_c^A)ᵀ − ρ(s_c^B) ρ(s_c^B)ᵀ)   per column c, diagonal 0
    ΔB = ΔW                                                  separate feedback matrices

averaged over the batch.  Both engines use this table: the Brian2 engine as
synapse code, the numpy reference through :func:`ep_update`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ESTIMATORS = ("one-sided", "symmetric", "random-sign")


@dataclass(frozen=True)
class Estimator:
    """An EP estimator with its nudging strength.

    Parameters
    ----------
    name : {"one-sided", "symmetric", "random-sign"}
    beta : float
        Nudging strength, non-zero.  A negative β with ``one-sided`` nudges
        away from the target.
    """

    name: str = "random-sign"
    beta: float = 0.5

    def __post_init__(self):
        if self.name not in ESTIMATORS:
            raise ValueError(f"unknown estimator {self.name!r}; choose one of "
                             f"{', '.join(ESTIMATORS)}")
        if not np.isfinite(self.beta) or self.beta == 0:
            raise ValueError(f"beta = {self.beta!r}: the nudging strength β must be a "
                             "finite non-zero number (EP divides by β); try --beta 0.5")

    @property
    def phases(self) -> tuple[str, ...]:
        """Phases to simulate, in the recordings' ``phase`` vocabulary (:mod:`cortex_ep.recordings.traces`)."""
        if self.name == "symmetric":
            return ("free", "nudged", "nudged_neg")
        return ("free", "nudged")

    def signs(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Sign of β in the first nudged phase for ``n`` samples, shape ``(n,)``.

        Only ``random-sign`` draws from ``rng``; the others return ones.
        """
        if self.name == "random-sign":
            return rng.choice(np.array([-1.0, 1.0]), size=n)
        return np.ones(n)

    def compared_rates(self, states: dict, activation: str = "hard_sigmoid"):
        """ρ(s) of phases A and B (see the table above) from ``{phase: state dict}``."""
        from .energy import get_activation

        rho = get_activation(activation).rho
        a = states["nudged"]
        b = states["nudged_neg"] if self.name == "symmetric" else states["free"]
        return {k: rho(v) for k, v in a.items()}, {k: rho(v) for k, v in b.items()}

    def factors(self, signs: np.ndarray) -> np.ndarray:
        """Per-sample factor multiplying the A − B difference, shape ``(n,)``."""
        if self.name == "symmetric":
            return np.full(np.shape(signs), 1.0 / (2.0 * self.beta))
        return 1.0 / (self.beta * np.asarray(signs, dtype=float))


def ep_update(net, rates_a: dict, rates_b: dict, factors: np.ndarray):
    """Batch-averaged EP descent direction from the rates of phases A and B.

    Parameters
    ----------
    net : cortex_ep.model.spec.Network
    rates_a, rates_b : dict of (batch, N) arrays
        ρ(s) of every population (the input included) at the end of phase A / B.
    factors : (batch,) array
        From :meth:`Estimator.factors`, of the same array type as the rates
        (numpy arrays or torch tensors: the formula is shared).

    Returns
    -------
    dW : dict of (N_pre, N_post) arrays, and (C, K, K) lateral blocks
    db : dict of (N,) arrays
    """
    from .energy import feedback_name, lateral_name, lateral_outer

    f = factors[:, None]
    n = f.shape[0]
    dW = {}
    for proj in net.projections:
        a_pre, b_pre = rates_a[proj.pre], rates_b[proj.pre]
        if proj.pre == net.input.name:
            # the input is clamped: the same rates in both phases, one product
            dW[proj.name] = (a_pre * f).T @ (rates_a[proj.post] - rates_b[proj.post]) / n
        else:
            dW[proj.name] = ((a_pre * f).T @ rates_a[proj.post]
                             - (b_pre * f).T @ rates_b[proj.post]) / n
    for pop in net.lateral:
        dW[lateral_name(pop.name)] = (lateral_outer(rates_a[pop.name], factors, pop.n_columns)
                                      - lateral_outer(rates_b[pop.name], factors,
                                                      pop.n_columns)) / n
    for proj in net.separate:
        # the feedback synapse sees the same pre and post rates: the same local rule
        dW[feedback_name(proj.name)] = dW[proj.name]
    db = {pop.name: (f * (rates_a[pop.name] - rates_b[pop.name])).mean(0)
          for pop in net.dynamic}
    return dW, db
