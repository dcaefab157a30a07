"""A rollout buffer that hands out complete episodes only, for Monte-Carlo policy gradients."""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.buffers import DictRolloutBuffer, RolloutBuffer
from stable_baselines3.common.type_aliases import DictRolloutBufferSamples, RolloutBufferSamples
from stable_baselines3.common.vec_env import VecNormalize

# The per-transition arrays that travel with an unfinished episode from one rollout to the next.
_CARRIED_FIELDS = ("observations", "actions", "rewards", "values", "log_probs")

# A field is one array, or (observations of a Dict space) a dict of arrays indexed alike.
Field = Any


def _each(field: Field, apply: Callable[[np.ndarray], np.ndarray]) -> Field:
    """``apply`` to the field's array, or to each array of a Dict observation field."""
    return {key: apply(value) for key, value in field.items()} if isinstance(field, dict) else apply(field)


def _rows(index: Any, copy: bool = False) -> Callable[[np.ndarray], np.ndarray]:
    """A function taking ``array[index]`` (a copy with ``copy=True``), for :func:`_each`."""
    return (lambda array: array[index].copy()) if copy else (lambda array: array[index])


def _concatenate(parts: list[Field]) -> Field:
    if isinstance(parts[0], dict):
        return {key: np.concatenate([part[key] for part in parts]) for key in parts[0]}
    return np.concatenate(parts)


def _length(field: Field) -> int:
    return len(next(iter(field.values()))) if isinstance(field, dict) else len(field)


class _EpisodicSplit:
    """The complete-episode split shared by the Box and the Dict observation buffers below.

    ``compute_returns_and_advantage`` splits each env's column at episode ends. Transitions of
    episodes that ended inside the rollout (including the start of an episode carried over from
    earlier rollouts) form the training batch, with the discounted reward-to-go
    ``G_t = r_t + gamma * G_{t+1}`` (``G = 0`` after an episode's last step) as ``returns``.
    The unfinished tail of each env is carried into the next rollout instead of being
    bootstrapped, so every episode is used exactly once, when it is complete.

    The split is a pure function of (carried-in tail, this rollout's data, last ``dones``): calling
    ``compute_returns_and_advantage`` again after editing ``rewards`` (as reward relabelling does)
    gives the same batch with the new rewards, and the tail only moves on at the next ``reset``.

    ``advantages`` equals ``returns``: the baseline is the algorithm's business. In the
    ``(n_steps, n_envs)`` arrays, ``returns`` and ``advantages`` are NaN for the carried tail.
    """

    # Provided by SB3's RolloutBuffer / DictRolloutBuffer, which the concrete classes extend.
    n_envs: int
    gamma: float
    returns: np.ndarray
    advantages: np.ndarray
    episode_starts: np.ndarray

    def _init_tails(self, n_envs: int) -> None:
        # Called before the parent's __init__, which calls reset() (and reset() reads the tails).
        self._tails_out: list[dict[str, Field] | None] = [None] * n_envs

    def reset(self) -> None:
        # The tails left by the last split become this rollout's prefix.
        self._tails_in = self._tails_out
        self._tails_out = [None] * self.n_envs
        self.batch: dict[str, Field] = {}
        self.n_episodes = 0
        super().reset()  # type: ignore[misc]  # SB3's buffer, next in the concrete class's MRO

    @property
    def n_transitions(self) -> int:
        """Number of transitions of complete episodes ready for training."""
        return _length(self.batch["returns"]) if "returns" in self.batch else 0

    def compute_returns_and_advantage(self, last_values: th.Tensor, dones: np.ndarray) -> None:
        """Split complete episodes from unfinished tails and compute reward-to-go.

        :param last_values: ignored: a Monte-Carlo return never bootstraps an unfinished episode.
        :param dones: whether each env's last step in this rollout ended its episode.
        """
        pieces: list[dict[str, Field]] = []
        self.n_episodes = 0
        self.returns[:] = np.nan
        for env in range(self.n_envs):
            column = {name: _each(getattr(self, name), _rows((slice(None), env))) for name in _CARRIED_FIELDS}
            # ends[t]: transition t is the last of its episode.
            ends = np.append(self.episode_starts[1:, env], float(dones[env])).astype(bool)
            tail = self._tails_in[env]
            # A tail continues only if this rollout's first step continues its episode; a
            # reset between rollouts (learn(reset_num_timesteps=True)) cuts it off for good.
            if tail is not None and not self.episode_starts[0, env]:
                column = {name: _concatenate([tail[name], column[name]]) for name in _CARRIED_FIELDS}
                ends = np.concatenate([np.zeros(len(tail["rewards"]), dtype=bool), ends])
                n_prefix = len(tail["rewards"])
            else:
                n_prefix = 0

            n_complete = int(np.flatnonzero(ends)[-1]) + 1 if ends.any() else 0
            if n_complete < len(ends):
                self._tails_out[env] = {
                    name: _each(values, _rows(slice(n_complete, None), copy=True)) for name, values in column.items()
                }

            returns = np.zeros(n_complete, dtype=np.float32)
            future = 0.0
            for step in reversed(range(n_complete)):
                if ends[step]:
                    future = 0.0
                future = column["rewards"][step] + self.gamma * future
                returns[step] = future
            # Mirror into the (n_steps, n_envs) arrays for this rollout's own steps.
            own = returns[n_prefix:]
            self.returns[: len(own), env] = own

            self.n_episodes += int(ends.sum())
            complete = {name: _each(values, _rows(slice(None, n_complete))) for name, values in column.items()}
            pieces.append({**complete, "returns": returns})

        self.batch = {name: _concatenate([piece[name] for piece in pieces]) for name in pieces[0]}
        self.advantages = self.returns.copy()

    def get(self, batch_size: int | None = None) -> Generator[Any, None, None]:
        """Yield the complete-episode transitions (nothing if no episode ended), in minibatches if asked."""
        n_samples = self.n_transitions
        if n_samples == 0:
            return
        if batch_size is None:
            batch_size = n_samples
        indices = np.random.permutation(n_samples)
        for start in range(0, n_samples, batch_size):
            yield self._get_samples(indices[start : start + batch_size])  # type: ignore[attr-defined]


class EpisodicRolloutBuffer(_EpisodicSplit, RolloutBuffer):
    """SB3's ``RolloutBuffer`` filled by the usual ``collect_rollouts``, read out episode by episode.

    See :class:`_EpisodicSplit` for the split; :class:`EpisodicDictRolloutBuffer` is the same
    for Dict observation spaces.
    """

    def __init__(
        self,
        buffer_size: int,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        device: th.device | str = "auto",
        gae_lambda: float = 1.0,
        gamma: float = 0.99,
        n_envs: int = 1,
    ):
        if isinstance(observation_space, spaces.Dict):
            raise ValueError(
                f"observation_space: EpisodicRolloutBuffer needs a non-Dict observation space, got "
                f"{observation_space} (EpisodicDictRolloutBuffer takes Dict spaces)"
            )
        self._init_tails(n_envs)
        super().__init__(buffer_size, observation_space, action_space, device, gae_lambda, gamma, n_envs)

    def _get_samples(self, batch_inds: np.ndarray, env: VecNormalize | None = None) -> RolloutBufferSamples:
        batch = self.batch
        data = (
            batch["observations"][batch_inds],
            batch["actions"][batch_inds].astype(np.float32, copy=False),
            batch["values"][batch_inds],
            batch["log_probs"][batch_inds],
            batch["returns"][batch_inds],
            batch["returns"][batch_inds],
        )
        return RolloutBufferSamples(*tuple(map(self.to_torch, data)))


class EpisodicDictRolloutBuffer(_EpisodicSplit, DictRolloutBuffer):
    """:class:`EpisodicRolloutBuffer` for Dict observation spaces (REINFORCE's ``MultiInputPolicy``)."""

    def __init__(
        self,
        buffer_size: int,
        observation_space: spaces.Dict,
        action_space: spaces.Space,
        device: th.device | str = "auto",
        gae_lambda: float = 1.0,
        gamma: float = 0.99,
        n_envs: int = 1,
    ):
        self._init_tails(n_envs)
        super().__init__(buffer_size, observation_space, action_space, device, gae_lambda, gamma, n_envs)

    # The Dict samples, as SB3's DictRolloutBuffer returns them.
    def _get_samples(self, batch_inds: np.ndarray, env: VecNormalize | None = None) -> DictRolloutBufferSamples:  # type: ignore[override]
        batch = self.batch
        returns = self.to_torch(batch["returns"][batch_inds])
        return DictRolloutBufferSamples(
            observations={key: self.to_torch(value[batch_inds]) for key, value in batch["observations"].items()},
            actions=self.to_torch(batch["actions"][batch_inds].astype(np.float32, copy=False)),
            old_values=self.to_torch(batch["values"][batch_inds]),
            old_log_prob=self.to_torch(batch["log_probs"][batch_inds]),
            advantages=returns,
            returns=returns,
        )
