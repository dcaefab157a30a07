"""The quantile-Huber loss of QR-DQN with a hand-written gradient.

Same value and gradient as sb3-contrib's ``quantile_huber_loss(current, target,
sum_over_quantiles=True)`` in its TQC layout, which the tests use as the reference. sb3-contrib's
version lets autograd differentiate about ten element-wise operations on the
``(batch, n_critics, n_quantiles, n_target_quantiles)`` pairwise tensor; with twin heads (batch 64,
25 quantiles) that was about half of a QuantileDQN update and kept QuantileDQN at 0.72x QR-DQN's
throughput. The gradient has a closed form, so the forward pass keeps the one pairwise product it
needs and the backward pass is a single sum: about 3x faster forward + backward
(``benchmarks/bench_quantile_loss.py``), so two heads cost less than sb3-contrib's loss on one.

For ``delta = target_j - current_i`` and ``tau_i = (i + 0.5) / n_quantiles``:

* ``huber(delta) = c * (delta - c / 2)`` with ``c = clamp(delta, -1, 1)``;
* ``weight = |tau_i - 1{delta < 0}|``, i.e. ``1 - tau_i`` where ``delta < 0`` and ``tau_i`` elsewhere;
* ``loss = sum(weight * huber) / (batch * n_critics * n_target_quantiles)`` (summed over the current
  quantiles, averaged over the rest);
* ``d loss / d current_i = -sum_j weight * c / (...)`` and ``d loss / d target_j = +sum_i weight * c / (...)``.
"""

from __future__ import annotations

from typing import Any

import torch as th


class _QuantileHuberLoss(th.autograd.Function):
    """Autograd function behind ``quantile_huber_loss``; saves ``weight * c`` for the backward pass."""

    @staticmethod
    def forward(ctx: Any, current_quantiles: th.Tensor, target_quantiles: th.Tensor) -> th.Tensor:
        n_quantiles = current_quantiles.shape[-1]
        levels = th.arange(n_quantiles, dtype=current_quantiles.dtype, device=current_quantiles.device)
        tau = ((levels + 0.5) / n_quantiles).unsqueeze(-1)  # (n_quantiles, 1): broadcasts over target quantiles
        delta = target_quantiles.unsqueeze(-2) - current_quantiles.unsqueeze(-1)
        clipped = delta.clamp(-1.0, 1.0)
        weighted_slope = th.where(delta < 0, 1.0 - tau, tau).mul_(clipped)
        # delta becomes delta - c / 2, so that weight * huber = weighted_slope * delta (in place: no new tensor).
        delta.sub_(clipped, alpha=0.5)
        scale = n_quantiles / delta.numel()
        ctx.save_for_backward(weighted_slope)
        ctx.scale = scale
        ctx.target_shape = target_quantiles.shape
        return th.dot(weighted_slope.view(-1), delta.view(-1)) * scale

    @staticmethod
    def backward(ctx: Any, grad_output: th.Tensor) -> tuple[th.Tensor | None, th.Tensor | None]:
        (weighted_slope,) = ctx.saved_tensors
        step = grad_output * ctx.scale
        grad_current = grad_target = None
        if ctx.needs_input_grad[0]:
            grad_current = weighted_slope.sum(dim=-1).mul_(-step)
        if ctx.needs_input_grad[1]:
            # The target may broadcast over critics: reduce the gradient back to its shape.
            grad_target = weighted_slope.sum(dim=-2).mul_(step).sum_to_size(ctx.target_shape)
        return grad_current, grad_target


def quantile_huber_loss(current_quantiles: th.Tensor, target_quantiles: th.Tensor) -> th.Tensor:
    """
    Quantile-Huber loss (threshold 1) of every critic's quantiles against a target distribution.

    :param current_quantiles: ``(batch, n_critics, n_quantiles)``, at levels ``(i + 0.5) / n_quantiles``
    :param target_quantiles: ``(batch, 1, n_target_quantiles)`` (shared by the critics) or
        ``(batch, n_critics, n_target_quantiles)``
    :return: the scalar loss, summed over the current quantiles and averaged over batch, critics and
        target quantiles, as sb3-contrib's ``quantile_huber_loss(..., sum_over_quantiles=True)``
    """
    if current_quantiles.ndim != 3 or target_quantiles.ndim != 3:
        raise ValueError(
            f"quantile_huber_loss expects 3-D (batch, n_critics, n_quantiles) tensors, got shapes "
            f"{tuple(current_quantiles.shape)} and {tuple(target_quantiles.shape)}"
        )
    return _QuantileHuberLoss.apply(current_quantiles, target_quantiles)
