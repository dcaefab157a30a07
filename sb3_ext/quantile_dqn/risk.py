"""Risk measures of a return distribution given by equally weighted quantiles.

QR-DQN's ``n`` outputs estimate the quantiles at levels ``(i + 0.5) / n``; each stands for a
``1 / n`` slice of probability, so the return distribution is the step quantile function
``F^-1(u) = q_(i)`` for ``u`` in ``[i / n, (i + 1) / n)``, with ``q_(i)`` the sorted outputs (the
network does not guarantee their order). Everything below is exact for that step function.
"""

from __future__ import annotations

import math

import torch as th

RISK_MEASURES = ("mean", "cvar")


def check_risk(risk_measure: str, risk_alpha: float) -> None:
    """Raise a one-line ``ValueError`` for an unknown measure or an ``alpha`` outside ``(0, 1]``."""
    if risk_measure not in RISK_MEASURES:
        raise ValueError(f"risk_measure={risk_measure!r} is not supported; expected one of {RISK_MEASURES}")
    if isinstance(risk_alpha, bool) or not isinstance(risk_alpha, (int, float)) or not 0.0 < risk_alpha <= 1.0:
        raise ValueError(f"risk_alpha={risk_alpha!r} is not supported; expected a number in (0, 1]")


def cvar(quantiles: th.Tensor, alpha: float, dim: int = 1) -> th.Tensor:
    """
    Conditional value at risk: the mean of the worst ``alpha`` fraction of outcomes.

    ``(1 / alpha) * integral_0^alpha F^-1(u) du``: the ``floor(alpha * n)`` lowest quantiles count in
    full and the next one for the remaining fraction. ``alpha=1`` gives the mean.
    """
    n = quantiles.shape[dim]
    sorted_quantiles = quantiles.sort(dim=dim).values
    mass = alpha * n
    weights = (mass - th.arange(n, device=quantiles.device, dtype=quantiles.dtype)).clamp(0.0, 1.0) / mass
    shape = [1] * quantiles.ndim
    shape[dim] = n
    return (sorted_quantiles * weights.view(shape)).sum(dim=dim)


def value_at_risk(quantiles: th.Tensor, alpha: float, dim: int = 1) -> th.Tensor:
    """The ``alpha``-quantile of the return, ``inf{x : P(Z <= x) >= alpha}``."""
    n = quantiles.shape[dim]
    # The small tolerance keeps e.g. 0.1 * 30 = 3.0000000000000004 from rounding up to 4.
    index = min(max(math.ceil(alpha * n - 1e-9) - 1, 0), n - 1)
    return quantiles.sort(dim=dim).values.select(dim, index)


def quantile_spread(quantiles: th.Tensor, dim: int = 1) -> th.Tensor:
    """Inter-quantile range, ``F^-1(0.75) - F^-1(0.25)``."""
    return value_at_risk(quantiles, 0.75, dim) - value_at_risk(quantiles, 0.25, dim)


def risk_score(quantiles: th.Tensor, risk_measure: str, risk_alpha: float, dim: int = 1) -> th.Tensor:
    """The value an agent maximises under ``risk_measure``: the mean or the lower-tail CVaR."""
    if risk_measure == "cvar":
        return cvar(quantiles, risk_alpha, dim)
    return quantiles.mean(dim=dim)
