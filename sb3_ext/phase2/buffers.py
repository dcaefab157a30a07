"""Replay buffer that also keeps the goal each human pursued (needed by sampled V_h^e targets)."""

from __future__ import annotations

from typing import Any, NamedTuple, cast

import numpy as np
import torch as th
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.vec_env import VecNormalize


class Phase2Samples(NamedTuple):
    """SB3's ``ReplayBufferSamples`` plus ``goals`` (batch, n_humans): goal index per human."""

    observations: th.Tensor
    actions: th.Tensor
    next_observations: th.Tensor
    dones: th.Tensor
    rewards: th.Tensor
    discounts: th.Tensor | None
    goals: th.Tensor


class Phase2ReplayBuffer(ReplayBuffer):
    """SB3 ``ReplayBuffer`` storing ``info["goals"]`` next to each transition.

    It also has room for an integer id of each stored observation (``state_ids``, -1 until its
    user fills it in, reset whenever the slot is overwritten): Phase 2's model-based targets need
    only the state of a transition, and look each one up once.

    :param n_humans: length of the goals tuple in each step's info
    """

    def __init__(self, *args: Any, n_humans: int = 1, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.goals = np.zeros((self.buffer_size, self.n_envs, n_humans), dtype=np.int64)
        self.state_ids = np.full((self.buffer_size, self.n_envs), -1, dtype=np.int64)

    def add(self, obs, next_obs, action, reward, done, infos: list[dict[str, Any]]) -> None:
        self.goals[self.pos] = np.array([info["goals"] for info in infos])
        self.state_ids[self.pos] = -1
        super().add(obs, next_obs, action, reward, done, infos)

    def sample_positions(self, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
        """Slot and env index of ``batch_size`` transitions, drawn uniformly as :meth:`sample` draws
        them, for callers that read only some fields (``sample`` converts every one to a tensor)."""
        if self.optimize_memory_usage and self.full:
            # The slot at pos holds the newest next observation, not a transition's first one.
            rows = (np.random.randint(1, self.buffer_size, size=batch_size) + self.pos) % self.buffer_size
        else:
            rows = np.random.randint(0, self.buffer_size if self.full else self.pos, size=batch_size)
        return rows, np.random.randint(0, high=self.n_envs, size=batch_size)

    def sample(self, batch_size: int, env: VecNormalize | None = None) -> Phase2Samples:  # type: ignore[override]
        """A batch with goals: SB3's ``sample`` returns what :meth:`_get_samples` builds, though
        its annotation names the parent's sample type."""
        return cast(Phase2Samples, super().sample(batch_size, env))

    def _get_samples(self, batch_inds: np.ndarray, env: VecNormalize | None = None) -> Phase2Samples:  # type: ignore[override]
        # The parent draws the env index of each sample from numpy's global generator; replaying
        # that draw gives the matching goals without copying the parent's sampling code.
        rng_state = np.random.get_state()
        samples = super()._get_samples(batch_inds, env)
        np.random.set_state(rng_state)
        env_indices = np.random.randint(0, high=self.n_envs, size=(len(batch_inds),))
        return Phase2Samples(*samples, self.to_torch(self.goals[batch_inds, env_indices]))
