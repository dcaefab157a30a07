"""Bootstrap targets and the gradient loop shared by TwinDQN and QuantileDQN.

Both algorithms keep ``n_critics`` value heads and their target copies. Their outputs are handled
here in one layout, ``(batch, n_critics, k, n_actions)`` (batch first, as sb3-contrib's TQC lays out
its critics): ``k`` is the number of quantiles for
QuantileDQN and 1 for TwinDQN (a Q-value is a one-atom distribution), so a single rule serves both:

* the next action is chosen by the caller (double Q-learning: from the *online* heads' mean);
* every target head is evaluated at that action;
* the heads are reduced by an element-wise ``min`` (clipped double Q, the default) or ``mean``;
* the TD target is ``r + (1 - done) * discount * value``.

``TwinCriticTraining`` is the gradient loop both run around their own loss (plus DQfD's
large-margin term on demonstrations when a model has them, :mod:`sb3_ext.common.demonstrations`);
it also sets up n-step replay, for Dict observations too (``DictNStepReplayBuffer``) and again on load.
"""

from __future__ import annotations

import warnings
from abc import abstractmethod

import torch as th
from gymnasium import spaces
from stable_baselines3.common.buffers import NStepReplayBuffer
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.type_aliases import ReplayBufferSamples

from sb3_ext.common.buffers import DictNStepReplayBuffer
from sb3_ext.common.demonstrations import DemonstrationMargin

TARGET_REDUCTIONS = ("min", "mean")


def check_target_reduction(target_reduction: str) -> str:
    """Return ``target_reduction`` if it is supported, else raise a one-line ``ValueError``."""
    if target_reduction not in TARGET_REDUCTIONS:
        raise ValueError(f"target_reduction={target_reduction!r} is not supported; expected one of {TARGET_REDUCTIONS}")
    return target_reduction


def evaluate_at_actions(heads: th.Tensor, actions: th.Tensor) -> th.Tensor:
    """
    Pick every head's values at one action per sample.

    :param heads: ``(batch, n_critics, k, n_actions)``
    :param actions: ``(batch,)`` or ``(batch, 1)`` integer actions
    :return: ``(batch, n_critics, k)``
    """
    batch_size, n_critics, k, _ = heads.shape
    index = actions.long().view(batch_size, 1, 1, 1).expand(batch_size, n_critics, k, 1)
    return heads.gather(dim=3, index=index).squeeze(dim=3)


def reduce_critics(values: th.Tensor, target_reduction: str) -> th.Tensor:
    """Combine the critics' values ``(batch, n_critics, k)`` into ``(batch, k)``, element-wise."""
    if target_reduction == "min":
        return values.min(dim=1).values
    return values.mean(dim=1)


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
    """Mean spread between critics ``(batch, n_critics)``: ``max - min`` (``|Q1 - Q2|`` for two critics)."""
    return (values.max(dim=1).values - values.min(dim=1).values).mean()


class TwinCriticTraining(OffPolicyAlgorithm):
    """
    ``train()`` for value algorithms with several critics: sample, step on ``_loss``, log the mean
    loss of the call and the ``_statistics`` of its last batch.

    Statistics come from one batch per call because some (the risk measures) sort quantiles, which
    would cost about a tenth of each gradient step; a batch is already a sample of replayed states.
    Mixed in before SB3's ``DQN`` or sb3-contrib's ``QRDQN``, whose ``policy.optimizer`` and
    ``max_grad_norm`` (``None``: no clipping) it uses.

    ``demonstrations`` (None unless set, e.g. by a curriculum hand-over): every gradient step adds
    their weighted large-margin term on a minibatch of ``batch_size`` demonstrations to the loss;
    ``train/margin_loss`` and ``train/margin_weight`` are logged.
    """

    max_grad_norm: float | None
    #: A class default, so that models built or loaded without demonstrations have the attribute.
    demonstrations: DemonstrationMargin | None = None

    def _setup_model(self) -> None:
        if self.n_steps > 1 and self._n_step_buffer_is_automatic():
            # Choose the n-step buffer here rather than in SB3, which has none for Dict observations.
            dict_observations = isinstance(self.observation_space, spaces.Dict)
            self.replay_buffer_class = DictNStepReplayBuffer if dict_observations else NStepReplayBuffer
            self.replay_buffer_kwargs.update(n_steps=self.n_steps, gamma=self.gamma)
            with warnings.catch_warnings():
                # SB3 warns that n_steps "is ignored" whenever a buffer class is set; this one is the
                # n-step buffer for exactly these n_steps and gamma.
                warnings.filterwarnings("ignore", message=r"`n_steps=\d+` is ignored")
                super()._setup_model()
        else:
            super()._setup_model()

    def _n_step_buffer_is_automatic(self) -> bool:
        """
        True when the n-step buffer is ours to choose: no buffer class was given, or the one given is
        the choice a saved model stored for exactly its own ``n_steps`` and ``gamma`` (SB3 saves the
        buffer class it picked as if the user had passed it).
        """
        if self.replay_buffer_class is None:
            return True
        kwargs = self.replay_buffer_kwargs
        return self.replay_buffer_class in (NStepReplayBuffer, DictNStepReplayBuffer) and (
            kwargs.get("n_steps"),
            kwargs.get("gamma"),
        ) == (self.n_steps, self.gamma)

    @abstractmethod
    def _loss(self, replay_data: ReplayBufferSamples) -> tuple[th.Tensor, th.Tensor]:
        """The loss to minimise and the detached online outputs ``(batch, n_critics, k, n_actions)``."""

    @abstractmethod
    def _statistics(self, replay_data: ReplayBufferSamples, current: th.Tensor) -> dict[str, th.Tensor]:
        """Scalar statistics keyed by logger name, from a batch and the online outputs ``_loss`` gave."""

    def train(self, gradient_steps: int, batch_size: int = 100) -> None:
        self.policy.set_training_mode(True)
        self._update_learning_rate(self.policy.optimizer)

        # Losses stay on the device until the end of the call: one synchronisation per train().
        losses, margin_losses = [], []
        margin_weight = self.demonstrations.weight if self.demonstrations is not None else 0.0
        for _ in range(gradient_steps):
            replay_data = self.replay_buffer.sample(batch_size, env=self._vec_normalize_env)  # type: ignore[union-attr]
            loss, current = self._loss(replay_data)
            if self.demonstrations is not None and margin_weight > 0:
                margin_loss = self.demonstrations.loss(self, batch_size)
                loss = loss + margin_weight * margin_loss
                margin_losses.append(margin_loss.detach())

            self.policy.optimizer.zero_grad()
            loss.backward()
            if self.max_grad_norm is not None:
                th.nn.utils.clip_grad_norm_(self.policy.parameters(), self.max_grad_norm)
            self.policy.optimizer.step()

            losses.append(loss.detach())

        self._n_updates += gradient_steps
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        self.logger.record("train/loss", th.stack(losses).mean().item())
        if self.demonstrations is not None:
            self.logger.record("train/margin_weight", margin_weight)
            if margin_losses:
                self.logger.record("train/margin_loss", th.stack(margin_losses).mean().item())
        for key, value in self._statistics(replay_data, current).items():
            self.logger.record(key, value.item())
