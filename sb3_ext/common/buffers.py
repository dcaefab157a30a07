"""n-step replay for Dict observations, which SB3 does not have.

SB3 2.9's ``NStepReplayBuffer`` stores flat observations only, and ``OffPolicyAlgorithm`` refuses
``n_steps > 1`` with a Dict observation space. ``DictNStepReplayBuffer`` adds the same n-step rule
to SB3's ``DictReplayBuffer`` (its storage and ``add`` are used as they are).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from stable_baselines3.common.buffers import DictReplayBuffer
from stable_baselines3.common.type_aliases import DictReplayBufferSamples
from stable_baselines3.common.vec_env import VecNormalize


class DictNStepReplayBuffer(DictReplayBuffer):
    """
    ``DictReplayBuffer`` whose samples carry n-step returns, as SB3's ``NStepReplayBuffer`` gives
    for flat observations.

    A sample starting at row ``t`` looks ahead ``k = 0 .. n_steps - 1`` rows of the same env and stops
    at the first row that ends an episode (terminated or truncated) or is the newest row written
    (the row after it is older data, or not written yet). With ``m`` rows taken:
    ``rewards = sum_{k<m} gamma**k r_{t+k}``, ``discounts = gamma**m``, the next observation is that of
    the last row taken and ``dones`` is its termination (truncation is not a termination).

    Takes ``DictReplayBuffer``'s arguments plus:

    :param n_steps: rows a return may span
    :param gamma: discount factor
    """

    def __init__(self, *args: Any, n_steps: int = 3, gamma: float = 0.99, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.n_steps = n_steps
        self.gamma = gamma

    def _get_samples(  # type: ignore[override]
        self,
        batch_inds: np.ndarray,
        env: VecNormalize | None = None,
    ) -> DictReplayBufferSamples:
        env_indices = np.random.randint(0, high=self.n_envs, size=(len(batch_inds),))
        offsets = np.arange(self.n_steps)
        rows = (batch_inds[:, None] + offsets) % self.buffer_size  # (batch, n_steps), wrapping around the ring
        columns = env_indices[:, None]

        ends = np.logical_or(self.dones[rows, columns], self.timeouts[rows, columns])
        ends |= rows == (self.pos - 1) % self.buffer_size
        last = np.where(ends.any(axis=1), ends.argmax(axis=1), self.n_steps - 1)  # offset of the last row taken
        taken = offsets <= last[:, None]

        rewards = self._normalize_reward(self.rewards[rows, columns], env)
        returns = (rewards * self.gamma**offsets * taken).sum(axis=1, keepdims=True).astype(np.float32)
        discounts = (self.gamma ** (last + 1)).reshape(-1, 1).astype(np.float32)
        last_rows = rows[np.arange(len(batch_inds)), last]
        dones = self.dones[last_rows, env_indices] * (1 - self.timeouts[last_rows, env_indices])

        observations = self._normalize_obs({key: obs[batch_inds, env_indices] for key, obs in self.observations.items()}, env)
        next_observations = self._normalize_obs(
            {key: obs[last_rows, env_indices] for key, obs in self.next_observations.items()}, env
        )
        assert isinstance(observations, dict) and isinstance(next_observations, dict)
        return DictReplayBufferSamples(
            observations={key: self.to_torch(obs) for key, obs in observations.items()},
            actions=self.to_torch(self.actions[batch_inds, env_indices]),
            next_observations={key: self.to_torch(obs) for key, obs in next_observations.items()},
            dones=self.to_torch(dones.reshape(-1, 1)),
            rewards=self.to_torch(returns),
            discounts=self.to_torch(discounts),
        )
