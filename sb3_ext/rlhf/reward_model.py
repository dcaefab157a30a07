"""A Bradley–Terry reward model: a small network fit on pairwise segment preferences."""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.preprocessing import get_flattened_obs_dim, preprocess_obs
from stable_baselines3.common.torch_layers import create_mlp
from torch import nn
from torch.nn import functional as F

from sb3_ext.rlhf.feedback import Preference, Segment


class BradleyTerryRewardModel(nn.Module):
    """``r(s, a)``, fit so that ``P(first better) = sigmoid(sum_first r - sum_second r)``.

    This is the Bradley–Terry model over segment returns (Christiano et al., 2017). Its outputs
    are only defined up to a constant, so :meth:`predict` standardises them with the mean and
    standard deviation of ``r`` over the transitions of the preference data, measured at the last
    fit: relabelling then adds a reward of unit scale, centred on what was compared.

    :param observation_space: the env's observation space (not Dict)
    :param action_space: the env's action space
    :param net_arch: hidden layer sizes
    :param learning_rate: Adam learning rate
    :param epochs: passes over all preferences at each fit
    :param batch_size: preferences per gradient step
    :param seed: seed of the network's initialisation and of the minibatch order
    """

    # Registered buffers (saved with the module), declared for the type checker.
    reward_mean: th.Tensor
    reward_std: th.Tensor

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        net_arch: Sequence[int] = (64, 64),
        learning_rate: float = 1e-3,
        epochs: int = 5,
        batch_size: int = 64,
        seed: int | None = None,
    ):
        super().__init__()
        if isinstance(observation_space, spaces.Dict):
            raise ValueError(f"observation_space: the reward model needs a non-Dict space, got {observation_space}")
        self.observation_space = observation_space
        self.action_space = action_space
        self.epochs = epochs
        self.batch_size = batch_size
        self._rng = np.random.default_rng(seed)
        input_dim = get_flattened_obs_dim(observation_space) + get_flattened_obs_dim(action_space)
        # Seed the initialisation without disturbing the global torch stream the agent uses.
        with th.random.fork_rng(enabled=seed is not None):
            if seed is not None:
                th.manual_seed(seed)
            self.net = nn.Sequential(*create_mlp(input_dim, 1, list(net_arch), activation_fn=nn.Tanh))
        self.optimizer = th.optim.Adam(self.net.parameters(), lr=learning_rate)
        self.register_buffer("reward_mean", th.zeros(()))
        self.register_buffer("reward_std", th.ones(()))

    def forward(self, observations: th.Tensor, actions: th.Tensor) -> th.Tensor:
        """Raw (unstandardised) rewards, one per row."""
        features = [
            # Dict spaces are refused by the RLHF callback: both come back as tensors.
            cast(th.Tensor, preprocess_obs(observations, self.observation_space)).flatten(1),
            cast(th.Tensor, preprocess_obs(actions, self.action_space)).flatten(1),
        ]
        return self.net(th.cat(features, dim=1)).squeeze(-1)

    def _transition_rewards(self, segments: Sequence[Segment]) -> th.Tensor:
        """Raw rewards of all the segments' transitions, concatenated."""
        return self(
            th.as_tensor(np.concatenate([segment.observations for segment in segments])),
            th.as_tensor(np.concatenate([segment.actions for segment in segments])),
        )

    def _segment_returns(self, segments: Sequence[Segment]) -> th.Tensor:
        """Sum of raw rewards over each segment (segments may differ in length)."""
        lengths = th.tensor([len(segment) for segment in segments])
        rewards = self._transition_rewards(segments)
        owner = th.repeat_interleave(th.arange(len(segments)), lengths)
        return th.zeros(len(segments)).index_add(0, owner, rewards)

    def loss(self, preferences: Sequence[Preference]) -> th.Tensor:
        """Bradley–Terry negative log-likelihood (cross-entropy on the preference probabilities)."""
        logits = self._segment_returns([p.first for p in preferences]) - self._segment_returns(
            [p.second for p in preferences]
        )
        targets = th.tensor([p.prob_first for p in preferences], dtype=logits.dtype)
        return F.binary_cross_entropy_with_logits(logits, targets)

    def fit(self, preferences: Sequence[Preference]) -> float:
        """Train on all ``preferences``; returns the final full-data loss."""
        preferences = list(preferences)
        for _ in range(self.epochs):
            order = self._rng.permutation(len(preferences))
            for start in range(0, len(preferences), self.batch_size):
                batch = [preferences[i] for i in order[start : start + self.batch_size]]
                self.optimizer.zero_grad()
                self.loss(batch).backward()
                self.optimizer.step()
        with th.no_grad():
            rewards = self._transition_rewards([p.first for p in preferences] + [p.second for p in preferences])
            self.reward_mean.copy_(rewards.mean())
            self.reward_std.copy_(rewards.std(correction=0).clamp_min(1e-8))
            return self.loss(preferences).item()

    @th.no_grad()
    def predict(self, observations: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """Standardised rewards for a batch of transitions."""
        rewards = self(th.as_tensor(observations), th.as_tensor(actions))
        return ((rewards - self.reward_mean) / self.reward_std).numpy()
