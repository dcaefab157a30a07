"""QuantileDQN's quantile-Huber loss: hand values, sb3-contrib's loss as the reference, numerical gradients."""

from __future__ import annotations

import pytest
import torch as th
from sb3_contrib.common.utils import quantile_huber_loss as contrib_quantile_huber_loss

from sb3_ext.quantile_dqn.loss import quantile_huber_loss


def test_value_and_gradient_against_hand_values():
    # Levels 0.25 and 0.75; current [0, 2], target [2, 3.5].
    # i=0: deltas 2, 3.5 -> huber 1.5, 3.0, weight .25 -> .375 + .75; i=1: deltas 0, 1.5 -> huber 0, 1.0,
    # weight .75 -> 0 + .75. Sum 1.875 over (batch 1 * critics 1 * targets 2) = .9375.
    # Gradient: -sum_j weight * clamp(delta, -1, 1) / 2 -> i=0: -(.25 + .25) / 2, i=1: -(0 + .75) / 2.
    current = th.tensor([[[0.0, 2.0]]], requires_grad=True)
    target = th.tensor([[[2.0, 3.5]]], requires_grad=True)
    loss = quantile_huber_loss(current, target)
    loss.backward()
    assert loss.item() == pytest.approx(0.9375)
    assert current.grad.flatten().tolist() == pytest.approx([-0.25, -0.375])
    assert target.grad.flatten().tolist() == pytest.approx([0.125, 0.5])


@pytest.mark.parametrize("n_critics", [1, 2, 3])
@pytest.mark.parametrize("shared_target", [True, False])
def test_matches_sb3_contrib_loss_and_gradients(n_critics, shared_target):
    generator = th.Generator().manual_seed(n_critics)
    batch, n_quantiles, n_targets = 16, 7, 5
    current = (3 * th.randn(batch, n_critics, n_quantiles, generator=generator, dtype=th.float64)).requires_grad_(True)
    target_critics = 1 if shared_target else n_critics
    target = 3 * th.randn(batch, target_critics, n_targets, generator=generator, dtype=th.float64)
    # The kinks: deltas of exactly 0 and +-1.
    target[0, 0, :3] = current[0, 0, 0].detach() + th.tensor([0.0, 1.0, -1.0], dtype=th.float64)
    target.requires_grad_(True)

    ours = quantile_huber_loss(current, target)
    # sb3-contrib makes its quantile levels in float32 unless given them: pass them in float64.
    levels = ((th.arange(n_quantiles, dtype=th.float64) + 0.5) / n_quantiles).view(1, 1, -1, 1)
    reference = contrib_quantile_huber_loss(current, target, cum_prob=levels, sum_over_quantiles=True)
    assert ours.item() == pytest.approx(reference.item(), rel=1e-12)
    ours_grads = th.autograd.grad(ours, (current, target))
    reference_grads = th.autograd.grad(reference, (current, target))
    for mine, theirs in zip(ours_grads, reference_grads, strict=False):
        assert mine.shape == theirs.shape
        assert th.allclose(mine, theirs, rtol=1e-12, atol=1e-15)


def test_gradient_matches_finite_differences():
    generator = th.Generator().manual_seed(0)
    current = (2 * th.randn(4, 2, 5, generator=generator, dtype=th.float64)).requires_grad_(True)
    target = (2 * th.randn(4, 1, 6, generator=generator, dtype=th.float64)).requires_grad_(True)
    assert th.autograd.gradcheck(quantile_huber_loss, (current, target))


def test_only_the_current_quantiles_get_a_gradient_when_the_target_is_fixed():
    current = th.zeros(2, 2, 3, requires_grad=True)
    target = th.ones(2, 1, 3)
    quantile_huber_loss(current, target).backward()
    assert current.grad is not None and target.grad is None


def test_two_dimensional_input_is_refused_with_the_shapes():
    with pytest.raises(ValueError, match=r"3-D .*\(4, 5\)"):
        quantile_huber_loss(th.zeros(4, 5), th.zeros(4, 5))
