"""REINFORCE (Williams, 1992): Monte-Carlo policy gradient as an SB3 on-policy algorithm."""

from __future__ import annotations

from typing import Any, ClassVar, TypeVar

import torch as th
from gymnasium import spaces
from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm
from stable_baselines3.common.policies import ActorCriticPolicy, BasePolicy
from stable_baselines3.common.type_aliases import GymEnv, MaybeCallback, Schedule
from torch.nn import functional as F

from sb3_ext.reinforce.buffers import EpisodicDictRolloutBuffer, EpisodicRolloutBuffer
from sb3_ext.reinforce.policies import CnnPolicy, MlpPolicy, MultiInputPolicy

SelfREINFORCE = TypeVar("SelfREINFORCE", bound="REINFORCE")

BASELINES = (None, "mean", "value")


class REINFORCE(OnPolicyAlgorithm):
    """REINFORCE: one gradient step of ``-log pi(a|s) * (G - b)`` per rollout, on complete episodes.

    Rollouts are collected by SB3's own ``collect_rollouts`` into an :class:`EpisodicRolloutBuffer`
    (:class:`EpisodicDictRolloutBuffer` for Dict observations, with ``MultiInputPolicy``),
    which keeps only episodes that have ended: an episode still running when the rollout stops is
    carried into the next rollout and used once it is complete, never bootstrapped. ``G`` is the
    discounted reward-to-go. If no episode ends within a rollout, there is no update for it.

    Like A2C/PPO, an episode cut by a time limit (``TimeLimit.truncated``) gets ``gamma * V(s_T)``
    added to its last reward by SB3's rollout loop. With ``baseline='value'``, ``V`` is the learned
    value head; otherwise the value head is zeroed and never trained, so ``G`` stays the plain
    Monte-Carlo sum of rewards.

    The loss is averaged over transitions. Transitions carried from the previous rollout were
    sampled by the policy before the last update; REINFORCE uses them as on-policy data (the
    policy moves little in one step), which is the price of never cutting an episode.

    :param policy: the policy model (``MlpPolicy``, ``CnnPolicy``, ``MultiInputPolicy`` or an
        ``ActorCriticPolicy`` class)
    :param env: the environment to learn from (if registered in Gym, can be str)
    :param learning_rate: learning rate, constant or a function of the remaining progress (1 to 0)
    :param n_steps: steps per env per rollout; episodes longer than this are carried over rollouts
    :param gamma: discount factor
    :param baseline: ``None`` (plain ``G``), ``'mean'`` (batch mean of ``G``) or ``'value'``
        (a state-value head trained by MSE on ``G``, subtracted from ``G`` without gradient)
    :param normalize_returns: divide ``G - b`` by the batch standard deviation of ``G``, which makes
        the step size independent of the reward scale (with ``baseline='mean'`` this is the usual
        standardised return)
    :param ent_coef: entropy bonus coefficient
    :param vf_coef: weight of the value loss (only with ``baseline='value'``)
    :param max_grad_norm: gradient clipping norm; loose by default because the value loss is on raw
        returns, and a tight clip of the joint gradient would let it crowd out the policy gradient
    :param stats_window_size: episodes averaged for the rollout/ logs
    :param tensorboard_log: TensorBoard log directory (None: no logging)
    :param policy_kwargs: extra arguments for the policy
    :param verbose: 0 silent, 1 info, 2 debug
    :param seed: random seed
    :param device: torch device
    :param _init_setup_model: whether to build the networks at construction
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {
        "MlpPolicy": MlpPolicy,
        "CnnPolicy": CnnPolicy,
        "MultiInputPolicy": MultiInputPolicy,
    }
    rollout_buffer: EpisodicRolloutBuffer | EpisodicDictRolloutBuffer
    policy: ActorCriticPolicy

    def __init__(
        self,
        policy: str | type[ActorCriticPolicy],
        env: GymEnv | str,
        learning_rate: float | Schedule = 1e-3,
        n_steps: int = 256,
        gamma: float = 0.99,
        baseline: str | None = "value",
        normalize_returns: bool = False,
        ent_coef: float = 0.0,
        vf_coef: float = 0.5,
        max_grad_norm: float = 10.0,
        stats_window_size: int = 100,
        tensorboard_log: str | None = None,
        policy_kwargs: dict[str, Any] | None = None,
        verbose: int = 0,
        seed: int | None = None,
        device: th.device | str = "auto",
        _init_setup_model: bool = True,
    ):
        if baseline not in BASELINES:
            raise ValueError(f"baseline: expected one of None, 'mean', 'value', got {baseline!r}")
        super().__init__(
            policy,
            env,
            learning_rate=learning_rate,
            n_steps=n_steps,
            gamma=gamma,
            gae_lambda=1.0,
            ent_coef=ent_coef,
            vf_coef=vf_coef,
            max_grad_norm=max_grad_norm,
            use_sde=False,
            sde_sample_freq=-1,
            rollout_buffer_class=None,  # chosen by _setup_model from the observation space
            stats_window_size=stats_window_size,
            tensorboard_log=tensorboard_log,
            policy_kwargs=policy_kwargs,
            verbose=verbose,
            seed=seed,
            device=device,
            _init_setup_model=False,
            supported_action_spaces=(spaces.Box, spaces.Discrete, spaces.MultiDiscrete, spaces.MultiBinary),
        )
        self.baseline = baseline
        self.normalize_returns = normalize_returns
        if _init_setup_model:
            self._setup_model()

    def _setup_model(self) -> None:
        dict_observations = isinstance(self.observation_space, spaces.Dict)
        self.rollout_buffer_class = EpisodicDictRolloutBuffer if dict_observations else EpisodicRolloutBuffer
        super()._setup_model()
        if self.baseline != "value":
            # The value head is then outside the loss, so it keeps these zeros: SB3's time-limit
            # bootstrap in collect_rollouts adds gamma * 0 and G stays the plain Monte-Carlo return.
            th.nn.init.zeros_(self.policy.value_net.weight)
            th.nn.init.zeros_(self.policy.value_net.bias)

    def train(self) -> None:
        """One gradient step on the complete episodes of the last rollout."""
        self.policy.set_training_mode(True)
        self._update_learning_rate(self.policy.optimizer)
        self.logger.record("train/episodes_per_update", self.rollout_buffer.n_episodes)

        # A single full batch: get() yields nothing when no episode ended in this rollout.
        for rollout_data in self.rollout_buffer.get(batch_size=None):
            actions = rollout_data.actions
            if isinstance(self.action_space, spaces.Discrete):
                actions = actions.long().flatten()
            values, log_prob, entropy = self.policy.evaluate_actions(rollout_data.observations, actions)
            values = values.flatten()
            returns = rollout_data.returns

            if self.baseline == "value":
                weights = returns - values.detach()
            elif self.baseline == "mean":
                weights = returns - returns.mean()
            else:
                weights = returns
            if self.normalize_returns and len(returns) > 1:
                weights = weights / (returns.std() + 1e-8)

            policy_loss = -(weights * log_prob).mean()
            # No closed form (e.g. squashed Gaussian): estimate the entropy by -log pi.
            entropy_mean = -log_prob.mean() if entropy is None else entropy.mean()
            loss = policy_loss - self.ent_coef * entropy_mean
            if self.baseline == "value":
                value_loss = F.mse_loss(values, returns)
                loss = loss + self.vf_coef * value_loss
                self.logger.record("train/value_loss", value_loss.item())

            self.policy.optimizer.zero_grad()
            loss.backward()
            th.nn.utils.clip_grad_norm_(self.policy.parameters(), self.max_grad_norm)
            self.policy.optimizer.step()

            self._n_updates += 1
            self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
            self.logger.record("train/policy_loss", policy_loss.item())
            self.logger.record("train/entropy", entropy_mean.item())
            self.logger.record("train/return_mean", returns.mean().item())
            if hasattr(self.policy, "log_std"):
                self.logger.record("train/std", th.exp(self.policy.log_std).mean().item())

    def learn(
        self: SelfREINFORCE,
        total_timesteps: int,
        callback: MaybeCallback = None,
        log_interval: int = 1,
        tb_log_name: str = "REINFORCE",
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
    ) -> SelfREINFORCE:
        return super().learn(
            total_timesteps=total_timesteps,
            callback=callback,
            log_interval=log_interval,
            tb_log_name=tb_log_name,
            reset_num_timesteps=reset_num_timesteps,
            progress_bar=progress_bar,
        )
