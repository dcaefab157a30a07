"""TwinDQN: DQN with twin Q heads, double Q-learning and a clipped (min) target."""

from __future__ import annotations

from typing import Any, ClassVar, TypeVar

import numpy as np
import torch as th
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.type_aliases import GymEnv, MaybeCallback, ReplayBufferSamples, Schedule
from stable_baselines3.dqn import DQN
from torch.nn import functional as F

from sb3_ext.common.targets import (
    TwinCriticTraining,
    bootstrap_values,
    check_target_reduction,
    critic_gap,
    evaluate_at_actions,
    td_target,
)
from sb3_ext.twin_dqn.policies import CnnPolicy, MlpPolicy, MultiInputPolicy, TwinDQNPolicy, TwinQNetwork

SelfTwinDQN = TypeVar("SelfTwinDQN", bound="TwinDQN")


# DQN types max_grad_norm as float, QRDQN as float | None; the shared mixin takes both.
class TwinDQN(TwinCriticTraining, DQN):  # type: ignore[misc]
    """
    Twin-critic Deep Q-Network.

    The policy holds ``n_critics`` (default 2) Q heads on one features extractor, each with a target
    copy. For the bootstrap target the next action is chosen by the online heads' mean (double
    Q-learning, van Hasselt et al. 2016), every target head is evaluated at that action and the
    heads are reduced with ``min`` (clipped double Q, Fujimoto et al. 2018) or ``mean``. All heads
    are regressed on that one target with the Huber loss.

    Takes every argument of SB3's ``DQN`` (same defaults; ``tau < 1`` gives soft target updates
    every ``target_update_interval`` steps, ``tau=1`` DQN's hard copy), plus:

    :param target_reduction: ``"min"`` (default) or ``"mean"`` over the target heads
    :param double_q: choose the next action with the online heads (default) rather than the target heads

    Head options (``n_critics``, ``share_trunk``) are policy arguments: ``policy_kwargs=dict(n_critics=2)``.
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {
        "MlpPolicy": MlpPolicy,
        "CnnPolicy": CnnPolicy,
        "MultiInputPolicy": MultiInputPolicy,
    }
    q_net: TwinQNetwork
    q_net_target: TwinQNetwork
    policy: TwinDQNPolicy

    def __init__(
        self,
        policy: str | type[TwinDQNPolicy],
        env: GymEnv | str,
        learning_rate: float | Schedule = 1e-4,
        buffer_size: int = 1_000_000,
        learning_starts: int = 100,
        batch_size: int = 32,
        tau: float = 1.0,
        gamma: float = 0.99,
        train_freq: int | tuple[int, str] = 4,
        gradient_steps: int = 1,
        replay_buffer_class: type[ReplayBuffer] | None = None,
        replay_buffer_kwargs: dict[str, Any] | None = None,
        optimize_memory_usage: bool = False,
        n_steps: int = 1,
        target_update_interval: int = 10000,
        exploration_fraction: float = 0.1,
        exploration_initial_eps: float = 1.0,
        exploration_final_eps: float = 0.05,
        max_grad_norm: float = 10,
        target_reduction: str = "min",
        double_q: bool = True,
        stats_window_size: int = 100,
        tensorboard_log: str | None = None,
        policy_kwargs: dict[str, Any] | None = None,
        verbose: int = 0,
        seed: int | None = None,
        device: th.device | str = "auto",
        _init_setup_model: bool = True,
    ) -> None:
        super().__init__(
            policy,
            env,
            learning_rate=learning_rate,
            buffer_size=buffer_size,
            learning_starts=learning_starts,
            batch_size=batch_size,
            tau=tau,
            gamma=gamma,
            train_freq=train_freq,
            gradient_steps=gradient_steps,
            replay_buffer_class=replay_buffer_class,
            replay_buffer_kwargs=replay_buffer_kwargs,
            optimize_memory_usage=optimize_memory_usage,
            n_steps=n_steps,
            target_update_interval=target_update_interval,
            exploration_fraction=exploration_fraction,
            exploration_initial_eps=exploration_initial_eps,
            exploration_final_eps=exploration_final_eps,
            max_grad_norm=max_grad_norm,
            stats_window_size=stats_window_size,
            tensorboard_log=tensorboard_log,
            policy_kwargs=policy_kwargs,
            verbose=verbose,
            seed=seed,
            device=device,
            _init_setup_model=False,
        )
        self.target_reduction = check_target_reduction(target_reduction)
        self.double_q = double_q
        if _init_setup_model:
            self._setup_model()

    def _loss(self, replay_data: ReplayBufferSamples) -> tuple[th.Tensor, th.Tensor]:
        """
        Huber loss of every head against the shared target.

        :return: the loss (summed over heads, so each head gets the gradient a lone DQN would) and the
            detached online Q-values as one-atom distributions, ``(batch, n_critics, 1, n_actions)``
        """
        # SB3's n-step replay gives gamma ** (steps actually taken) per sample; plain replay gives None.
        discounts = replay_data.discounts if replay_data.discounts is not None else self.gamma
        with th.no_grad():
            next_target_q = self.q_net_target.forward_critics(replay_data.next_observations)
            next_q = self.q_net(replay_data.next_observations) if self.double_q else next_target_q.mean(dim=1)
            next_values = bootstrap_values(next_target_q.unsqueeze(2), next_q.argmax(dim=1), self.target_reduction)
            target_q = td_target(replay_data.rewards, replay_data.dones, discounts, next_values)  # (batch, 1)

        current_q = self.q_net.forward_critics(replay_data.observations).unsqueeze(2)
        taken = evaluate_at_actions(current_q, replay_data.actions)  # (batch, n_critics, 1)
        loss = F.smooth_l1_loss(taken, target_q.unsqueeze(1).expand_as(taken)) * taken.shape[1]
        return loss, current_q.detach()

    def _statistics(self, replay_data: ReplayBufferSamples, current: th.Tensor) -> dict[str, th.Tensor]:
        taken = evaluate_at_actions(current, replay_data.actions).squeeze(dim=2)  # (batch, n_critics)
        return {"train/q_mean": taken.mean(), "train/critic_gap": critic_gap(taken)}

    def learn(
        self: SelfTwinDQN,
        total_timesteps: int,
        callback: MaybeCallback = None,
        log_interval: int = 4,
        tb_log_name: str = "TwinDQN",
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
    ) -> SelfTwinDQN:
        return super().learn(
            total_timesteps=total_timesteps,
            callback=callback,
            log_interval=log_interval,
            tb_log_name=tb_log_name,
            reset_num_timesteps=reset_num_timesteps,
            progress_bar=progress_bar,
        )

    def predict_q_values(self, observation: np.ndarray | dict[str, np.ndarray]) -> np.ndarray:
        """Q-values of every head, ``(batch, n_critics, n_actions)`` (``(n_critics, n_actions)`` for one observation)."""
        self.policy.set_training_mode(False)
        obs_tensor, vectorized = self.policy.obs_to_tensor(observation)
        with th.no_grad():
            q_values = self.q_net.forward_critics(obs_tensor).cpu().numpy()
        return q_values if vectorized else q_values[0]
