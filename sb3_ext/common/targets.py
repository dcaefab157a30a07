"""Bootstrap targets shared by TwinDQN and QuantileDQN.

Both algorithms keep ``n_critics`` value heads and their target copies. Their outputs are handled
here in one layout, ``(n_critics, batch, k, n_actions)``: ``k`` is the number of quantiles for
QuantileDQN and 1 for TwinDQN (a Q-value is a one-atom distribution), so a single rule serves both:

* the next action is chosen by the caller (double Q-learning: from the *online* heads' mean);
* every target head is evaluated at that action;
* the heads are reduced by an element-wise ``min`` (clipped double Q, the default) or ``mean``;
* the TD target is ``r + (1 - done) * discount * value``.
"""

from __future__ import annotations

import torch as th

TARGET_REDUCTIONS = ("min", "mean")


def check_target_reduction(target_reduction: str) -> str:
    """Return ``target_reduction`` if it is supported, else raise a one-line ``ValueError``."""
    if target_reduction not in TARGET_REDUCTIONS:
        raise ValueError(f"target_reduction={target_reduction!r} is not supported; expected one of {TARGET_REDUCTIONS}")
    return target_reduction


def evaluate_at_actions(heads: th.Tensor, actions: th.Tensor) -> th.Tensor:
    """
    Pick every head's values at one action per sample.

    :param heads: ``(n_critics, batch, k, n_actions)``
    :param actions: ``(batch,)`` or ``(batch, 1)`` integer actions
    :return: ``(n_critics, batch, k)``
    """
    n_critics, batch_size, k, _ = heads.shape
    index = actions.long().view(1, batch_size, 1, 1).expand(n_critics, batch_size, k, 1)
    return heads.gather(dim=3, index=index).squeeze(dim=3)


def reduce_critics(values: th.Tensor, target_reduction: str) -> th.Tensor:
    """Combine the critics' values ``(n_critics, batch, k)`` into ``(batch, k)``, element-wise."""
    if target_reduction == "min":
        return values.min(dim=0).values
    return values.mean(dim=0)


def bootstrap_values(next_target_heads: th.Tensor, next_actions: th.Tensor, target_reduction: str) -> th.Tensor:
    """Target heads evaluated at the chosen next actions, reduced over critics: ``(batch, k)``."""
    return reduce_critics(evaluate_at_actions(next_target_heads, next_actions), target_reduction)


def td_target(
    rewards: th.Tensor,
    dones: th.Tensor,
    discounts: th.Tensor | float,
    next_values: th.Tensor,
) -> th.Tensor:
    """
    ``r + (1 - done) * discount * next_value``.

    :param rewards: ``(batch, 1)``; with SB3's n-step replay, already the discounted n-step return
    :param dones: ``(batch, 1)``, 1.0 where the bootstrap state is terminal (timeouts excluded)
    :param discounts: ``(batch, 1)`` from ``replay_data.discounts`` (``gamma ** steps actually taken``
        with n-step replay) or the scalar ``gamma`` when the buffer gives none
    :param next_values: ``(batch, k)``
    :return: ``(batch, k)``
    """
    return rewards + (1.0 - dones) * discounts * next_values


def critic_gap(values: th.Tensor) -> th.Tensor:
    """Mean spread between critics, ``max - min`` over dim 0 (``|Q1 - Q2|`` for two critics)."""
    return (values.max(dim=0).values - values.min(dim=0).values).mean()
