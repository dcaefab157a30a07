"""QuantileDQN: QR-DQN with twin quantile heads, a double/min target, risk-aware acting and risk logs."""

from __future__ import annotations

from typing import Any, ClassVar, TypeVar

import numpy as np
import torch as th
from sb3_contrib import QRDQN
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.type_aliases import GymEnv, MaybeCallback, ReplayBufferSamples, Schedule

from sb3_ext.common.targets import (
    TwinCriticTraining,
    bootstrap_values,
    check_target_reduction,
    critic_gap,
    evaluate_at_actions,
    td_target,
)
from sb3_ext.quantile_dqn.loss import quantile_huber_loss
from sb3_ext.quantile_dqn.policies import (
    CnnPolicy,
    MlpPolicy,
    MultiInputPolicy,
    QuantileDQNPolicy,
    TwinQuantileNetwork,
)
from sb3_ext.quantile_dqn.risk import check_risk, cvar, quantile_spread, value_at_risk

SelfQuantileDQN = TypeVar("SelfQuantileDQN", bound="QuantileDQN")


class QuantileDQN(TwinCriticTraining, QRDQN):
    """
    Quantile-regression DQN with twin quantile heads and risk-aware acting.

    Builds on sb3-contrib's QR-DQN and its quantile network (the quantile-Huber loss is QR-DQN's,
    reimplemented with a closed-form gradient for speed, see ``sb3_ext.quantile_dqn.loss``) and adds:

    * ``n_critics`` quantile heads (default 2) on one features extractor, each with a target copy,
      bootstrapped with TwinDQN's rule: the next action is greedy for the online heads' mean
      distribution (double Q-learning), every target head is evaluated there, and the heads are
      reduced quantile by quantile with ``min`` (default) or ``mean``;
    * risk-aware acting: with ``risk_measure="cvar"`` the greedy action maximises the mean of the
      lowest ``risk_alpha`` fraction of quantiles. The bootstrap uses the same greedy rule, so the
      learned distribution is that of the risk-averse policy being followed;
    * diagnostics at every update (every ``train()`` call, from its last batch), for the action the
      policy would choose on the replayed observations: ``risk/mean``, ``risk/cvar`` and
      ``risk/value_at_risk`` (at ``risk_alpha``) and ``risk/quantile_spread`` (inter-quantile
      range), plus ``train/q_mean`` and ``train/critic_gap``;
    * ``predict_distribution(obs)``: the quantiles of the return per action.

    Takes every argument of sb3-contrib's ``QRDQN`` (same defaults; ``tau < 1`` gives soft target
    updates every ``target_update_interval`` steps), plus:

    :param target_reduction: ``"min"`` (default) or ``"mean"`` over the target heads
    :param double_q: choose the next action with the online heads (default) rather than the target heads
    :param risk_measure: ``"mean"`` (default) or ``"cvar"``
    :param risk_alpha: CVaR / value-at-risk level in ``(0, 1]`` (default 0.25)

    Head options (``n_quantiles`` (default 25), ``n_critics``, ``share_trunk``) are policy arguments.
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {
        "MlpPolicy": MlpPolicy,
        "CnnPolicy": CnnPolicy,
        "MultiInputPolicy": MultiInputPolicy,
    }
    quantile_net: TwinQuantileNetwork
    quantile_net_target: TwinQuantileNetwork
    policy: QuantileDQNPolicy

    def __init__(
        self,
        policy: str | type[QuantileDQNPolicy],
        env: GymEnv | str,
        learning_rate: float | Schedule = 5e-5,
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
        exploration_fraction: float = 0.005,
        exploration_initial_eps: float = 1.0,
        exploration_final_eps: float = 0.01,
        max_grad_norm: float | None = None,
        target_reduction: str = "min",
        double_q: bool = True,
        risk_measure: str = "mean",
        risk_alpha: float = 0.25,
        stats_window_size: int = 100,
        tensorboard_log: str | None = None,
        policy_kwargs: dict[str, Any] | None = None,
        verbose: int = 0,
        seed: int | None = None,
        device: th.device | str = "auto",
        _init_setup_model: bool = True,
    ) -> None:
        check_risk(risk_measure, risk_alpha)
        # A copy: the risk options (and QRDQN's optimizer defaults) are added to it below, and the
        # caller's dict may be reused for another model.
        policy_kwargs = dict(policy_kwargs or {})
        for key in ("risk_measure", "risk_alpha"):
            if key in policy_kwargs:
                raise ValueError(f"policy_kwargs[{key!r}] is not accepted; pass {key}= to QuantileDQN instead")
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
        # Acting happens in the policy, so the risk measure is a policy argument; keeping it in
        # policy_kwargs also makes it part of the saved model.
        self.policy_kwargs.update(risk_measure=risk_measure, risk_alpha=risk_alpha)
        if _init_setup_model:
            self._setup_model()

    @property
    def risk_measure(self) -> str:
        """The risk measure the policy acts with (kept in ``policy_kwargs``, so it is saved with the model)."""
        return self.policy_kwargs["risk_measure"]

    @property
    def risk_alpha(self) -> float:
        """The CVaR level the policy acts with."""
        return self.policy_kwargs["risk_alpha"]

    def _setup_model(self) -> None:
        # SB3's ``load(path, risk_measure=..., risk_alpha=...)`` promises that constructor arguments
        # take effect: it writes them into the instance ``__dict__`` (the properties above hide
        # such entries) and then calls _setup_model. Move them into policy_kwargs, from which the
        # policy is built.
        for key in ("risk_measure", "risk_alpha"):
            if key in self.__dict__:
                self.policy_kwargs[key] = self.__dict__.pop(key)
        check_risk(self.policy_kwargs["risk_measure"], self.policy_kwargs["risk_alpha"])
        super()._setup_model()

    def _loss(self, replay_data: ReplayBufferSamples) -> tuple[th.Tensor, th.Tensor]:
        """
        Quantile-Huber loss of every head against the shared target distribution.

        :return: the loss (summed over heads, so each head gets the gradient a lone QR-DQN would) and
            the detached online quantiles, ``(batch, n_critics, n_quantiles, n_actions)``
        """
        # SB3's n-step replay gives gamma ** (steps actually taken) per sample; plain replay gives None.
        discounts = replay_data.discounts if replay_data.discounts is not None else self.gamma
        with th.no_grad():
            next_target = self.quantile_net_target.forward_critics(replay_data.next_observations)
            if self.double_q:
                next_distribution = self.quantile_net(replay_data.next_observations)
            else:
                next_distribution = next_target.mean(dim=1)
            next_actions = self.quantile_net.action_scores(next_distribution).argmax(dim=1)
            next_quantiles = bootstrap_values(next_target, next_actions, self.target_reduction)
            target_quantiles = td_target(replay_data.rewards, replay_data.dones, discounts, next_quantiles)

        current = self.quantile_net.forward_critics(replay_data.observations)
        taken = evaluate_at_actions(current, replay_data.actions)  # (batch, n_critics, n_quantiles)
        # (batch, n_critics, n_quantiles) against (batch, 1, n_target_quantiles): summed over the current
        # quantiles, averaged over the rest (sb3-contrib's loss as TQC uses it, with a closed-form gradient).
        loss = quantile_huber_loss(taken, target_quantiles.unsqueeze(1))
        return loss * taken.shape[1], current.detach()

    def _statistics(self, replay_data: ReplayBufferSamples, current: th.Tensor) -> dict[str, th.Tensor]:
        alpha = self.quantile_net.risk_alpha
        taken = evaluate_at_actions(current, replay_data.actions)
        # The risk diagnostics describe the action the policy would choose on the replayed observations.
        distribution = current.mean(dim=1)
        chosen_actions = self.quantile_net.action_scores(distribution).argmax(dim=1)
        chosen = evaluate_at_actions(distribution.unsqueeze(1), chosen_actions).squeeze(dim=1)
        return {
            "train/q_mean": taken.mean(),
            "train/critic_gap": critic_gap(taken.mean(dim=2)),
            "risk/mean": chosen.mean(),
            "risk/cvar": cvar(chosen, alpha).mean(),
            "risk/value_at_risk": value_at_risk(chosen, alpha).mean(),
            "risk/quantile_spread": quantile_spread(chosen).mean(),
        }

    def predict_distribution(self, observation: np.ndarray | dict[str, np.ndarray]) -> np.ndarray:
        """
        Quantiles of the return per action, averaged over the heads.

        :param observation: one observation or a batch (as for ``predict``)
        :return: ``(n_quantiles, n_actions)`` for one observation, ``(batch, n_quantiles, n_actions)``
            for a batch; row ``i`` estimates the quantile at level ``(i + 0.5) / n_quantiles``
        """
        self.policy.set_training_mode(False)
        obs_tensor, vectorized = self.policy.obs_to_tensor(observation)
        with th.no_grad():
            quantiles = self.quantile_net(obs_tensor).cpu().numpy()
        return quantiles if vectorized else quantiles[0]

    def learn(
        self: SelfQuantileDQN,
        total_timesteps: int,
        callback: MaybeCallback = None,
        log_interval: int = 4,
        tb_log_name: str = "QuantileDQN",
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
    ) -> SelfQuantileDQN:
        return super().learn(
            total_timesteps=total_timesteps,
            callback=callback,
            log_interval=log_interval,
            tb_log_name=tb_log_name,
            reset_num_timesteps=reset_num_timesteps,
            progress_bar=progress_bar,
        )
