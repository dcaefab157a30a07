"""MAAC: Actor-Attention-Critic for multi-agent RL (Iqbal & Sha, ICML 2019) as an SB3 algorithm.

A centralised critic gives every agent its own Q value, ``Q_i(o, a)``, computed from the agent's
observation-action encoding and its attention over the other agents' encodings (shared keys,
queries and values; see :class:`~sb3_ext.maac.policies.AttentionCritic`). The actors are soft
(SAC-style, with an automatically tuned temperature ``alpha``) and only see their own
observation (or, with ``NCAPolicy``, their neighbourhood). Each actor follows the
counterfactual-baseline policy gradient

    grad log pi_i(a_i | o_i) * (alpha log pi_i(a_i | o_i) - Q_i(o, a) + b_i(o, a_{-i})),
    b_i = E_{a_i' ~ pi_i}[ Q_i(o, (a_i', a_{-i})) ],

with every agent's action drawn from the current policies. For discrete actions ``b_i`` is
the exact sum over the agent's actions; for continuous ones it is estimated from
``n_action_samples`` actions per agent, each scored against the mean Q of the other samples
(a leave-one-out baseline, so that it stays independent of the action it corrects).

Differences from the authors' code, on purpose: the temperature is learned as in SAC (the
authors fix a reward scale), the next actions of the TD target come from the current actors
(as in SAC) rather than target actors, and the actors may share parameters (swarms).

The environment is an agent-slot VecEnv (one slot per agent of each env copy); MAAC accepts a
PettingZoo ``ParallelEnv`` or a joint env directly and builds it. ``num_timesteps`` counts
agent-steps, like every algorithm on such an env. The replay buffer keeps whole env copies.
"""

from __future__ import annotations

from typing import Any, ClassVar, TypeVar

import gymnasium as gym
import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.type_aliases import MaybeCallback, Schedule
from stable_baselines3.common.utils import polyak_update
from stable_baselines3.common.vec_env import VecEnv
from torch.nn import functional as F

from sb3_ext.maac.buffers import JointReplayBuffer
from sb3_ext.maac.policies import AttentionCritic, MAACPolicy, MultiAgentActor, NCAMAACPolicy
from sb3_ext.multiagent.algorithm import AgentSlotsAlgorithm
from sb3_ext.multiagent.vec import agent_slots_of, to_agent_slots

SelfMAAC = TypeVar("SelfMAAC", bound="MAAC")


class MAAC(AgentSlotsAlgorithm, OffPolicyAlgorithm):
    """Actor-Attention-Critic (see the module docstring).

    :param policy: ``"MlpPolicy"``, ``"NCAPolicy"`` or a :class:`MAACPolicy` subclass.
    :param env: a PettingZoo ``ParallelEnv``, a joint env (``gym.make("Swarm2D-v0")``), a VecEnv
        of joint envs, or an agent-slot VecEnv (see :func:`~sb3_ext.multiagent.vec.to_agent_slots`).
    :param learning_rate: learning rate of actors, critic and temperature.
    :param buffer_size: joint transitions kept (each holds a whole env copy).
    :param learning_starts: agent-steps of uniformly random actions before learning.
    :param batch_size: joint transitions per gradient step.
    :param tau: soft update rate of the target critic.
    :param gamma: discount factor.
    :param train_freq: update every ``train_freq`` steps of the VecEnv (or ``(n, "episode")``).
    :param gradient_steps: gradient steps per update (-1: as many as agent-steps collected).
    :param replay_buffer_class: defaults to :class:`JointReplayBuffer` (others must keep copies together).
    :param replay_buffer_kwargs: its keyword arguments (``n_agents`` is filled in).
    :param ent_coef: the temperature alpha: a float, or ``"auto"``/``"auto_<init>"`` to learn it.
    :param target_entropy: entropy target per agent when learning alpha; ``"auto"``: ``-action_dim``
        (continuous) or ``0.5 log(n_actions)`` (discrete).
    :param reward_scale: factor on the rewards in the critic's targets, the authors' knob for the
        balance of reward and entropy (they use 100); small shaped rewards need a larger scale.
    :param n_action_samples: own actions sampled per agent for the continuous baseline (>= 2).
    :param attention_l2: weight of the attention-logit regulariser of the critic loss.
    :param max_grad_norm: gradient clipping of actors and critic.
    :param target_update_interval: gradient steps between target-critic updates.
    :param stats_window_size: episodes in the rollout statistics.
    :param tensorboard_log: TensorBoard log directory.
    :param policy_kwargs: keyword arguments of the policy (``n_agents`` is filled in).
    :param verbose: 0 silent, 1 info, 2 debug.
    :param seed: random seed.
    :param device: torch device.
    :param _init_setup_model: build the networks now.
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {"MlpPolicy": MAACPolicy, "NCAPolicy": NCAMAACPolicy}
    policy: MAACPolicy
    actor: MultiAgentActor
    critic: AttentionCritic
    critic_target: AttentionCritic

    def __init__(
        self,
        policy: str | type[MAACPolicy],
        env: Any,
        learning_rate: float | Schedule = 1e-3,
        buffer_size: int = 100_000,
        learning_starts: int = 1000,
        batch_size: int = 256,
        tau: float = 0.005,
        gamma: float = 0.99,
        train_freq: int | tuple[int, str] = 1,
        gradient_steps: int = 1,
        replay_buffer_class: type[JointReplayBuffer] | None = None,
        replay_buffer_kwargs: dict[str, Any] | None = None,
        ent_coef: str | float = "auto",
        target_entropy: str | float = "auto",
        reward_scale: float = 1.0,
        n_action_samples: int = 8,
        attention_l2: float = 1e-3,
        max_grad_norm: float = 10.0,
        target_update_interval: int = 1,
        stats_window_size: int = 100,
        tensorboard_log: str | None = None,
        policy_kwargs: dict[str, Any] | None = None,
        verbose: int = 0,
        seed: int | None = None,
        device: th.device | str = "auto",
        _init_setup_model: bool = True,
    ) -> None:
        if n_action_samples < 2:
            raise ValueError(f"MAAC: n_action_samples={n_action_samples}, expected >= 2 (leave-one-out baseline)")
        policy_kwargs = dict(policy_kwargs or {})
        replay_buffer_kwargs = dict(replay_buffer_kwargs or {})
        if env is not None:
            env, n_agents = self._agent_slots(env)
            policy_kwargs["n_agents"] = n_agents
            replay_buffer_kwargs["n_agents"] = n_agents
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
            replay_buffer_class=replay_buffer_class or JointReplayBuffer,
            replay_buffer_kwargs=replay_buffer_kwargs,
            policy_kwargs=policy_kwargs,
            stats_window_size=stats_window_size,
            tensorboard_log=tensorboard_log,
            verbose=verbose,
            device=device,
            seed=seed,
            sde_support=False,
            support_multi_env=True,
            supported_action_spaces=(spaces.Box, spaces.Discrete),
        )
        self.ent_coef = ent_coef
        self.target_entropy = target_entropy
        self.reward_scale = reward_scale
        self.n_action_samples = n_action_samples
        self.attention_l2 = attention_l2
        self.max_grad_norm = max_grad_norm
        self.target_update_interval = target_update_interval
        self.log_ent_coef: th.Tensor | None = None
        self.ent_coef_optimizer: th.optim.Optimizer | None = None
        if _init_setup_model:
            self._setup_model()

    @staticmethod
    def _agent_slots(env: Any) -> tuple[VecEnv, int]:
        """``env`` as an agent-slot VecEnv, and its number of agents per env copy."""
        if isinstance(env, str):
            env = gym.make(env)
        env = to_agent_slots(env)
        slots = agent_slots_of(env)
        if slots is None:
            raise ValueError("MAAC: the env is not multi-agent; pass a PettingZoo ParallelEnv, a joint env "
                             "(e.g. gym.make('Swarm2D-v0')) or an agent-slot VecEnv")  # fmt: skip
        if slots.joint_observation:
            raise ValueError("MAAC: the env gives joint observations; MAAC regroups agents itself, "
                             "build it with joint_observation=False")  # fmt: skip
        return env, slots.n_agents

    def _setup_model(self) -> None:
        super()._setup_model()
        self.actor, self.critic, self.critic_target = self.policy.actor, self.policy.critic, self.policy.critic_target
        space = self.action_space
        if self.target_entropy == "auto":
            if isinstance(space, spaces.Discrete):
                self.target_entropy = float(0.5 * np.log(space.n))
            elif isinstance(space, spaces.Box):
                self.target_entropy = -float(np.prod(space.shape))
        self.target_entropy = float(self.target_entropy)
        if isinstance(self.ent_coef, str):
            if not self.ent_coef.startswith("auto"):
                raise ValueError(f"MAAC: ent_coef={self.ent_coef!r}, expected a number, 'auto' or 'auto_<initial value>'")
            initial = float(self.ent_coef.split("_")[1]) if "_" in self.ent_coef else 1.0
            self.log_ent_coef = th.log(th.full((1,), initial, device=self.device)).requires_grad_(True)
            self.ent_coef_optimizer = th.optim.Adam([self.log_ent_coef], lr=self.lr_schedule(1))
        else:
            self.ent_coef_tensor = th.tensor(float(self.ent_coef), device=self.device)

    # ------------------------------------------------------------------------------------------
    def counterfactual_baseline(
        self, obs: th.Tensor, joint_actions: th.Tensor
    ) -> tuple[th.Tensor, th.Tensor, th.Tensor]:
        """Discrete actions: ``Q_i(o, a)``, ``b_i = sum_a' pi_i(a' | o_i) Q_i(o, (a', a_{-i}))`` and
        ``Q_i(o, (a', a_{-i}))`` for every own action ``a'``, all without gradient.

        ``joint_actions`` ``(batch, n_agents)`` are action indices; returns ``(batch, n_agents)``,
        ``(batch, n_agents)`` and ``(batch, n_agents, n_actions)``.
        """
        assert isinstance(self.action_space, spaces.Discrete), "the exact baseline is for discrete actions"
        n_actions = int(self.action_space.n)
        with th.no_grad():
            attention = self.critic.attend(obs, self.policy.encode_actions(joint_actions))
            every_action = th.eye(n_actions, device=obs.device)[:, None, None, :].expand(-1, *joint_actions.shape, -1)
            q_all = self.critic.q_values(obs, every_action, attention).permute(1, 2, 0)
            probs = self.actor.log_probs(obs).exp()
            q_taken = q_all.gather(-1, joint_actions.long().unsqueeze(-1)).squeeze(-1)
            return q_taken, (probs * q_all).sum(-1), q_all

    def _actor_loss(self, obs: th.Tensor, ent_coef: th.Tensor) -> th.Tensor:
        """Soft policy-gradient loss with MAAC's counterfactual baseline, all agents at once."""
        joint_actions, log_prob = self.actor.sample(obs)  # the other agents act on-policy too
        if isinstance(self.action_space, spaces.Discrete):
            q_taken, baseline, _ = self.counterfactual_baseline(obs, joint_actions)
            advantage = q_taken - baseline
        else:
            own_actions, log_prob = self.actor.sample(obs, n_samples=self.n_action_samples)
            with th.no_grad():
                attention = self.critic.attend(obs, joint_actions)
                q = self.critic.q_values(obs, own_actions, attention)  # (samples, batch, n_agents)
                leave_one_out = (q.sum(0, keepdim=True) - q) / (self.n_action_samples - 1)
            advantage = q - leave_one_out
        return (log_prob * (ent_coef * log_prob - advantage).detach()).mean()

    def _temperature_step(self, obs: th.Tensor) -> tuple[th.Tensor, float | None]:
        """The temperature alpha for this gradient step (its value before any update) and, when
        alpha is learned, the loss of the update taken on it (SAC's: it pushes the policies'
        entropy towards ``target_entropy``)."""
        if self.log_ent_coef is None or self.ent_coef_optimizer is None:
            return self.ent_coef_tensor, None
        ent_coef = th.exp(self.log_ent_coef.detach())
        with th.no_grad():
            log_prob = self.actor.sample(obs)[1]
        # _setup_model has resolved "auto" to a number.
        ent_coef_loss = -(self.log_ent_coef * (log_prob + float(self.target_entropy)).detach()).mean()
        self.ent_coef_optimizer.zero_grad()
        ent_coef_loss.backward()
        self.ent_coef_optimizer.step()
        return ent_coef, ent_coef_loss.item()

    def train(self, gradient_steps: int, batch_size: int = 256) -> None:
        self.policy.set_training_mode(True)
        optimizers = [self.actor.optimizer, self.critic.optimizer]
        if self.ent_coef_optimizer is not None:
            optimizers.append(self.ent_coef_optimizer)
        self._update_learning_rate(optimizers)
        discrete = isinstance(self.action_space, spaces.Discrete)
        logs: dict[str, list[float]] = {"critic_loss": [], "actor_loss": [], "alpha": [], "attention_entropy": []}
        if self.ent_coef_optimizer is not None:
            logs["ent_coef_loss"] = []

        for _ in range(gradient_steps):
            data = self.replay_buffer.sample(batch_size, env=self._vec_normalize_env)  # type: ignore[union-attr]
            obs, next_obs = data.observations, data.next_observations
            actions = data.actions.squeeze(-1).long() if discrete else data.actions

            ent_coef, ent_coef_loss = self._temperature_step(obs)
            if ent_coef_loss is not None:
                logs["ent_coef_loss"].append(ent_coef_loss)

            with th.no_grad():
                next_actions, next_log_prob = self.actor.sample(next_obs)
                next_q, _ = self.critic_target(next_obs, self.policy.encode_actions(next_actions))
                soft_next_q = next_q - ent_coef * next_log_prob
                target_q = self.reward_scale * data.rewards + (1 - data.dones) * self.gamma * soft_next_q
            q, attention = self.critic(obs, self.policy.encode_actions(actions))
            critic_loss = F.mse_loss(q, target_q) + self.attention_l2 * attention.logit_magnitude()
            self.critic.optimizer.zero_grad()
            critic_loss.backward()
            th.nn.utils.clip_grad_norm_(self.critic.parameters(), self.max_grad_norm)
            self.critic.optimizer.step()

            actor_loss = self._actor_loss(obs, ent_coef)
            self.actor.optimizer.zero_grad()
            actor_loss.backward()
            th.nn.utils.clip_grad_norm_(self.actor.parameters(), self.max_grad_norm)
            self.actor.optimizer.step()

            self._n_updates += 1
            if self._n_updates % self.target_update_interval == 0:
                polyak_update(self.critic.parameters(), self.critic_target.parameters(), self.tau)
            logs["critic_loss"].append(critic_loss.item())
            logs["actor_loss"].append(actor_loss.item())
            logs["alpha"].append(ent_coef.item())
            logs["attention_entropy"].append(attention.entropy().item())

        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        for key, values in logs.items():
            self.logger.record(f"train/{key}", float(np.mean(values)))

    def learn(
        self: SelfMAAC,
        total_timesteps: int,
        callback: MaybeCallback = None,
        log_interval: int = 4,
        tb_log_name: str = "MAAC",
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
    ) -> SelfMAAC:
        return super().learn(
            total_timesteps=total_timesteps,
            callback=callback,
            log_interval=log_interval,
            tb_log_name=tb_log_name,
            reset_num_timesteps=reset_num_timesteps,
            progress_bar=progress_bar,
        )

    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), "actor", "critic", "critic_target"]

    def _get_torch_save_params(self) -> tuple[list[str], list[str]]:
        state_dicts = ["policy", "actor.optimizer", "critic.optimizer"]
        if self.ent_coef_optimizer is not None:
            return [*state_dicts, "ent_coef_optimizer"], ["log_ent_coef"]
        return state_dicts, ["ent_coef_tensor"]
