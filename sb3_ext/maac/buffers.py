"""``JointReplayBuffer``: SB3's replay buffer where one transition holds a whole env copy.

MAAC's critic looks at every agent of an env copy at once, so a sampled transition must keep
the copy together. SB3's off-policy loop hands the buffer one row per agent slot
(``copy * n_agents + agent``); the buffer regroups the rows by copy. Samples come out as
``observations (batch, n_agents, obs_dim)``, ``actions (batch, n_agents, action_dim)`` and
per-agent ``rewards``/``dones`` ``(batch, n_agents)``. Time-limit truncations (per agent, from
``TimeLimit.truncated``) do not count as ``dones``, as in SB3.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.preprocessing import get_action_dim
from stable_baselines3.common.type_aliases import ReplayBufferSamples
from stable_baselines3.common.vec_env import VecNormalize


class JointReplayBuffer(ReplayBuffer):
    """Replay buffer of joint transitions (see the module docstring).

    :param buffer_size: joint transitions kept (each holds all agents of one copy).
    :param observation_space: one agent's observation space.
    :param action_space: one agent's action space.
    :param device: where sampled tensors go.
    :param n_envs: agent slots of the VecEnv (``n_copies * n_agents``).
    :param optimize_memory_usage: not supported (must be False).
    :param handle_timeout_termination: do not treat time-limit ends as terminations.
    :param n_agents: agents per env copy.
    """

    def __init__(
        self,
        buffer_size: int,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        device: th.device | str = "auto",
        n_envs: int = 1,
        optimize_memory_usage: bool = False,
        handle_timeout_termination: bool = True,
        n_agents: int = 1,
    ) -> None:
        if optimize_memory_usage:
            raise ValueError("JointReplayBuffer: optimize_memory_usage=True is not supported")
        if n_envs % n_agents:
            raise ValueError(f"JointReplayBuffer: {n_envs} slots are not whole copies of {n_agents} agents")
        if not isinstance(observation_space, spaces.Box):
            raise ValueError(f"JointReplayBuffer: observation space {observation_space} is not a Box")
        self.n_agents = n_agents
        self.agent_action_dim = get_action_dim(action_space)
        shape = (n_agents, *observation_space.shape)
        joint_observation_space = spaces.Box(
            np.broadcast_to(observation_space.low, shape), np.broadcast_to(observation_space.high, shape),
            dtype=observation_space.dtype,
        )  # fmt: skip
        joint_action_space = spaces.Box(-np.inf, np.inf, (n_agents * self.agent_action_dim,), dtype=np.float32)
        super().__init__(
            buffer_size,
            joint_observation_space,
            joint_action_space,
            device=device,
            n_envs=n_envs // n_agents,
            handle_timeout_termination=handle_timeout_termination,
        )
        per_agent = (self.buffer_size, self.n_envs, n_agents)
        self.rewards = np.zeros(per_agent, dtype=np.float32)
        self.dones = np.zeros(per_agent, dtype=np.float32)
        self.timeouts = np.zeros(per_agent, dtype=np.float32)

    def add(
        self,
        obs: np.ndarray,
        next_obs: np.ndarray,
        action: np.ndarray,
        reward: np.ndarray,
        done: np.ndarray,
        infos: list[dict[str, Any]],
    ) -> None:
        """Store one VecEnv step, given per slot as SB3's off-policy loop does."""
        copies = (self.n_envs, self.n_agents)
        self.observations[self.pos] = np.asarray(obs).reshape(self.observations.shape[1:])
        self.next_observations[self.pos] = np.asarray(next_obs).reshape(self.next_observations.shape[1:])
        self.actions[self.pos] = np.asarray(action).reshape(self.actions.shape[1:])
        self.rewards[self.pos] = np.asarray(reward).reshape(copies)
        self.dones[self.pos] = np.asarray(done).reshape(copies)
        if self.handle_timeout_termination:
            truncated = [info.get("TimeLimit.truncated", False) for info in infos]
            self.timeouts[self.pos] = np.asarray(truncated).reshape(copies)
        self.pos += 1
        if self.pos == self.buffer_size:
            self.full = True
            self.pos = 0

    def _get_samples(self, batch_inds: np.ndarray, env: VecNormalize | None = None) -> ReplayBufferSamples:
        copy = np.random.randint(0, high=self.n_envs, size=(len(batch_inds),))
        actions = self.actions[batch_inds, copy].reshape(len(batch_inds), self.n_agents, self.agent_action_dim)
        data = (
            self._normalize_obs(self.observations[batch_inds, copy], env),
            actions,
            self._normalize_obs(self.next_observations[batch_inds, copy], env),
            self.dones[batch_inds, copy] * (1 - self.timeouts[batch_inds, copy]),
            self._normalize_reward(self.rewards[batch_inds, copy], env),
        )
        return ReplayBufferSamples(*tuple(map(self.to_torch, data)))
