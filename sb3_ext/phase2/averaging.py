"""A running average of the online networks' weights (Polyak averaging), for the final networks.

Phase 2's values are judged by their worst relative error over a set of states, and late in
training that worst case is set by the noise of the last gradient steps more than by how far
training has come: each step moves the weights by about lr times a noisy gradient. An average of
the weights over the last few thousand steps keeps the trend and removes most of that noise, at
the cost of one in-place multiply-add per step (Polyak & Juditsky 1992; Izmailov et al. 2018,
"Averaging Weights Leads to Wider Optima", for the same use in deep networks).
"""

from __future__ import annotations

import copy

import torch as th
from stable_baselines3.common.utils import polyak_update
from torch import nn


class WeightAverage(nn.Module):
    """An exponential moving average of a module's parameters with rate ``tau`` per update.

    The k-th update (counted from the first) mixes in the source's weights at rate
    max(tau, 1/k): the average is the plain mean of the weights seen so far until 1/tau updates
    have passed, then an exponential moving average with time constant about 1/tau updates.
    The first weights seen therefore carry no more weight than later ones (a plain EMA started
    from them would keep (1 - tau)^k of them), and the average is exact from the first update.
    ``count`` is a buffer, saved with the averaged weights.

    :param source: the module whose parameters are averaged (copied for the average's layout)
    :param tau: the rate once the plain-mean phase is over, in (0, 1]
    """

    count: th.Tensor  # a registered buffer

    def __init__(self, source: nn.Module, tau: float):
        super().__init__()
        if not 0.0 < tau <= 1.0:
            raise ValueError(f"tau: {tau!r}, expected a number in (0, 1]")
        self.tau = tau
        self.nets = copy.deepcopy(source).requires_grad_(False)
        self.register_buffer("count", th.tensor(0, dtype=th.int64))

    def update(self, source: nn.Module) -> None:
        """Mix ``source``'s current parameters into the average (SB3's in-place Polyak update)."""
        self.count += 1
        polyak_update(source.parameters(), self.nets.parameters(), max(self.tau, 1.0 / int(self.count)))

    def copy_to(self, target: nn.Module) -> None:
        """Overwrite ``target``'s parameters in place with the averaged ones (its optimizer keeps
        referring to the same tensors)."""
        with th.no_grad():
            for averaged, param in zip(self.nets.parameters(), target.parameters(), strict=True):
                param.copy_(averaged)
