"""DelayedTD3: SB3's TD3 with twin-critic diagnostics and a divergence guard.

The gradient step itself is SB3's ``TD3.train`` untouched: target policy smoothing, clipped
double-Q targets, n-step discounts, delayed actor and target updates, batch-norm syncing. We
do not copy that loop to add a few statistics; instead we watch it:

* a forward hook on the critic sees the ``(Q1, Q2)`` pair of every critic update (TD3 calls
  ``self.critic(obs, actions)`` exactly once per gradient step, and the actor loss goes through
  ``q1_forward``, which does not fire the hook);
* post-step hooks on the actor's and critic's optimizers count the updates that really happened.

The guard compares the twin critics' disagreement to the size of the Q-values. When the
relative gap stays above ``gap_alert`` for ``gap_patience`` consecutive critic updates, it warns
once and, with ``gap_action="stop"``, ends ``learn()`` normally at the next rollout.

With ``demonstrations`` (a :class:`~sb3_ext.common.demonstrations.DemonstrationCloning`, e.g. set
by a curriculum hand-over) the actor loss becomes TD3+BC's, still without copying the loop: a
forward hook on the first Q-network keeps the mean |Q1| of its latest call, which at the actor
step is the actor loss's ``Q1(s, mu(s))``; a pre-step hook on the actor's optimizer then divides
the actor's gradient by it and adds the cloning term's gradient.
"""

from __future__ import annotations

import warnings
from typing import Any, Literal, TypeVar

import numpy as np
import torch as th
from stable_baselines3 import TD3
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.noise import ActionNoise
from stable_baselines3.common.type_aliases import (
    GymEnv,
    MaybeCallback,
    RolloutReturn,
    Schedule,
    TrainFreq,
)
from stable_baselines3.common.vec_env import VecEnv
from stable_baselines3.td3.policies import TD3Policy

from sb3_ext.common.demonstrations import DemonstrationCloning
from sb3_ext.noise.processes import current_noise_sigma

SelfDelayedTD3 = TypeVar("SelfDelayedTD3", bound="DelayedTD3")

GapAction = Literal["warn", "stop"]


class DelayedTD3(TD3):
    """TD3 that reports how far its twin critics disagree and can stop when they diverge.

    Logged each training call: ``train/critic_gap`` (mean over the batch of |Q1 - Q2|, averaged
    over the call's gradient steps), ``train/critic_gap_max`` (largest |Q1 - Q2| seen),
    ``train/critic_gap_relative`` (the gap divided by the mean |Q|, what the guard watches),
    ``train/actor_updates`` and ``train/critic_updates`` (totals since creation, kept across
    save/load), ``train/policy_delay``, and SB3's ``train/actor_loss`` / ``train/critic_loss``.
    With more than two critics (``policy_kwargs=dict(n_critics=k)``) the gap is max Q - min Q.

    ``demonstrations`` (None unless set, e.g. by a curriculum hand-over): every actor update uses
    TD3+BC's loss on a minibatch of ``batch_size`` of them (see the module);
    ``train/bc_loss`` (unweighted, mean over the call's actor updates) and ``train/bc_weight`` are
    logged. SB3's ``train/actor_loss`` stays ``-Q`` unnormalised.

    All TD3 arguments keep SB3's meaning and defaults; the extra ones are:

    :param gap_alert: threshold on the relative gap ``mean|Q1 - Q2| / mean|Q|``; None disables the guard
    :param gap_patience: number of consecutive critic updates above ``gap_alert`` that trip the guard
    :param gap_action: ``"warn"`` (warn once, keep training) or ``"stop"`` (warn once, end ``learn()``)
    """

    #: A class default, so that models built or loaded without demonstrations have the attribute.
    demonstrations: DemonstrationCloning | None = None

    def __init__(
        self,
        policy: str | type[TD3Policy],
        env: GymEnv | str,
        learning_rate: float | Schedule = 1e-3,
        buffer_size: int = 1_000_000,
        learning_starts: int = 100,
        batch_size: int = 256,
        tau: float = 0.005,
        gamma: float = 0.99,
        train_freq: int | tuple[int, str] = 1,
        gradient_steps: int = 1,
        action_noise: ActionNoise | None = None,
        replay_buffer_class: type[ReplayBuffer] | None = None,
        replay_buffer_kwargs: dict[str, Any] | None = None,
        optimize_memory_usage: bool = False,
        n_steps: int = 1,
        policy_delay: int = 2,
        target_policy_noise: float = 0.2,
        target_noise_clip: float = 0.5,
        gap_alert: float | None = None,
        gap_patience: int = 1000,
        gap_action: GapAction = "warn",
        stats_window_size: int = 100,
        tensorboard_log: str | None = None,
        policy_kwargs: dict[str, Any] | None = None,
        verbose: int = 0,
        seed: int | None = None,
        device: th.device | str = "auto",
        _init_setup_model: bool = True,
    ) -> None:
        if gap_alert is not None and not gap_alert > 0:
            raise ValueError(f"gap_alert={gap_alert!r}: expected a positive number or None")
        if int(gap_patience) != gap_patience or gap_patience < 1:
            raise ValueError(f"gap_patience={gap_patience!r}: expected a positive integer")
        if gap_action not in ("warn", "stop"):
            raise ValueError(f"gap_action={gap_action!r}: expected 'warn' or 'stop'")
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
            action_noise=action_noise,
            replay_buffer_class=replay_buffer_class,
            replay_buffer_kwargs=replay_buffer_kwargs,
            optimize_memory_usage=optimize_memory_usage,
            n_steps=n_steps,
            policy_delay=policy_delay,
            target_policy_noise=target_policy_noise,
            target_noise_clip=target_noise_clip,
            stats_window_size=stats_window_size,
            tensorboard_log=tensorboard_log,
            policy_kwargs=policy_kwargs,
            verbose=verbose,
            seed=seed,
            device=device,
            _init_setup_model=False,
        )
        self.gap_alert = gap_alert
        self.gap_patience = int(gap_patience)
        self.gap_action = gap_action
        # Counters and guard state are plain attributes so that save/load pickles them.
        self.actor_updates = 0
        self.critic_updates = 0
        self.gap_streak = 0
        self.gap_alert_raised = False
        if _init_setup_model:
            self._setup_model()

    def _setup_model(self) -> None:
        super()._setup_model()
        # Rows of (mean gap, max gap, mean |Q|), one per critic update of the current train() call.
        self._gap_rows: list[th.Tensor] = []
        self._watching = False
        self._stop_requested = False
        self._q1_scale: th.Tensor | None = None
        self._bc_losses: list[th.Tensor] = []
        # The policy (hence the critic and both optimizers) is rebuilt here, also by load().
        self.critic.register_forward_hook(self._record_critic_gap)
        self.critic.q_networks[0].register_forward_hook(self._record_q1_scale)
        self.actor.optimizer.register_step_pre_hook(self._add_behaviour_cloning)
        self.actor.optimizer.register_step_post_hook(self._count_actor_update)
        self.critic.optimizer.register_step_post_hook(self._count_critic_update)

    def _record_critic_gap(self, _module: th.nn.Module, _inputs: Any, q_values: tuple[th.Tensor, ...]) -> None:
        if not self._watching:
            return
        with th.no_grad():
            q = th.cat(q_values, dim=1)
            spread = q.max(dim=1).values - q.min(dim=1).values
            self._gap_rows.append(th.stack((spread.mean(), spread.max(), q.abs().mean())))

    def _record_q1_scale(self, _module: th.nn.Module, _inputs: Any, q1: th.Tensor) -> None:
        if self._watching and self.demonstrations is not None:
            self._q1_scale = q1.detach().abs().mean()

    def _add_behaviour_cloning(self, *_: Any) -> None:
        """Turn the actor's gradient of ``-Q1`` into TD3+BC's (before the actor's optimizer steps)."""
        if not self._watching or self.demonstrations is None:
            return
        assert self._q1_scale is not None, "the actor loss did not go through the first Q-network"
        scale = self._q1_scale.clamp_min(1e-8)
        for parameter in self.actor.parameters():
            if parameter.grad is not None:
                parameter.grad.div_(scale)
        weight = self.demonstrations.current_weight()
        self.demonstrations.updates += 1
        if weight > 0:
            bc_loss = self.demonstrations.loss(self, self.batch_size)
            (weight * bc_loss).backward()
            self._bc_losses.append(bc_loss.detach())

    def _count_actor_update(self, *_: Any) -> None:
        self.actor_updates += 1

    def _count_critic_update(self, *_: Any) -> None:
        self.critic_updates += 1

    def train(self, gradient_steps: int, batch_size: int = 100) -> None:
        self._gap_rows.clear()
        self._bc_losses.clear()
        self._watching = True
        try:
            super().train(gradient_steps, batch_size)
        finally:
            self._watching = False
        if self.demonstrations is not None:
            self.logger.record("train/bc_weight", self.demonstrations.current_weight())
            if self._bc_losses:
                self.logger.record("train/bc_loss", th.stack(self._bc_losses).mean().item())
        if not self._gap_rows:  # gradient_steps=0: nothing was updated
            return
        # One host transfer for the whole call rather than one per gradient step.
        gaps = th.stack(self._gap_rows).cpu().numpy().astype(np.float64)
        relative = gaps[:, 0] / np.maximum(gaps[:, 2], 1e-8)
        self._update_guard(relative)

        self.logger.record("train/critic_gap", float(gaps[:, 0].mean()))
        self.logger.record("train/critic_gap_max", float(gaps[:, 1].max()))
        self.logger.record("train/critic_gap_relative", float(relative.mean()))
        self.logger.record("train/actor_updates", self.actor_updates)
        self.logger.record("train/critic_updates", self.critic_updates)
        self.logger.record("train/policy_delay", self.policy_delay)
        sigma = current_noise_sigma(self.action_noise)
        if sigma is not None:
            self.logger.record("train/noise_sigma", sigma)

    def _update_guard(self, relative_gaps: np.ndarray) -> None:
        """Advance the count of consecutive over-threshold updates and act when it reaches the patience."""
        if self.gap_alert is None:
            return
        for relative_gap in relative_gaps:
            self.gap_streak = self.gap_streak + 1 if relative_gap > self.gap_alert else 0
            if self.gap_streak < self.gap_patience:
                continue
            if not self.gap_alert_raised:
                self.gap_alert_raised = True
                warnings.warn(
                    f"DelayedTD3: the twin critics disagree by more than gap_alert={self.gap_alert} of |Q| "
                    f"for {self.gap_patience} consecutive updates (relative gap {relative_gap:.3g} at "
                    f"critic update {self.critic_updates}); "
                    + ("stopping training." if self.gap_action == "stop" else "training continues."),
                    RuntimeWarning,
                    stacklevel=2,
                )
            if self.gap_action == "stop":
                self._stop_requested = True
                self.gap_streak = 0
                return

    def collect_rollouts(
        self,
        env: VecEnv,
        callback: BaseCallback,
        train_freq: TrainFreq,
        replay_buffer: ReplayBuffer,
        action_noise: ActionNoise | None = None,
        learning_starts: int = 0,
        log_interval: int | None = None,
    ) -> RolloutReturn:
        # The guard cannot break SB3's learn() loop from inside train(); answering the next rollout
        # with continue_training=False does, and learn() then ends the usual way (callbacks included).
        if self._stop_requested:
            return RolloutReturn(0, 0, continue_training=False)
        return super().collect_rollouts(
            env, callback, train_freq, replay_buffer, action_noise, learning_starts, log_interval
        )

    def learn(
        self: SelfDelayedTD3,
        total_timesteps: int,
        callback: MaybeCallback = None,
        log_interval: int = 4,
        tb_log_name: str = "DelayedTD3",
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
    ) -> SelfDelayedTD3:
        self._stop_requested = False  # an explicit new learn() call resumes after a stop
        return super().learn(
            total_timesteps=total_timesteps,
            callback=callback,
            log_interval=log_interval,
            tb_log_name=tb_log_name,
            reset_num_timesteps=reset_num_timesteps,
            progress_bar=progress_bar,
        )

    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), "_gap_rows", "_watching", "_stop_requested", "_q1_scale",
                "_bc_losses"]
