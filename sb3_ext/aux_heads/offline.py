"""An offline dataset held in memory for the auxiliary heads, with Monte Carlo return targets."""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
from gymnasium import spaces

from sb3_ext.data.format import read_manifest
from sb3_ext.data.reader import iter_chunks


@dataclass
class ReturnTargets:
    """Discounted returns of every transition, split into what the data holds and a bootstrap.

    The return of transition ``i`` is ``partial[i] + discount[i] * V(observations[bootstrap[i]])``:
    ``partial`` sums the discounted rewards up to the end of the recorded segment. Where that end
    is a true termination ``discount`` is 0; where it is a time-limit truncation or the end of the
    recording, the rest of the episode is unknown and the current value estimate stands in for it
    (``bootstrap`` is the index of the next observation to evaluate, in ``next_observations``).
    """

    partial: np.ndarray
    discount: np.ndarray
    bootstrap: np.ndarray


def return_targets(rewards: np.ndarray, dones: np.ndarray, timeouts: np.ndarray, n_envs: int, gamma: float) -> ReturnTargets:
    """Return targets of transitions recorded from ``n_envs`` envs interleaved step by step.

    Row ``i`` is env ``i % n_envs`` at step ``i // n_envs`` (the chunk format's row order); each
    env's column is walked backwards, restarting the sum where an episode ended.
    """
    count = len(rewards) - len(rewards) % n_envs
    shape = (count // n_envs, n_envs)
    rewards = rewards[:count].reshape(shape).astype(np.float64)
    dones, timeouts = dones[:count].reshape(shape), timeouts[:count].reshape(shape)
    index = np.arange(count).reshape(shape)
    partial, discount, bootstrap = np.zeros(shape), np.zeros(shape), np.zeros(shape, dtype=np.int64)
    # The last step of each column ends the recording: bootstrap from its own next observation.
    running, running_discount, running_index = np.zeros(n_envs), np.ones(n_envs), index[-1].copy()
    for step in range(shape[0] - 1, -1, -1):
        ended = dones[step]
        # An episode ends here: the sum restarts; a truncation bootstraps from this transition's next obs.
        running = np.where(ended, 0.0, running)
        running_discount = np.where(ended, np.where(timeouts[step], 1.0, 0.0), running_discount)
        running_index = np.where(ended, index[step], running_index)
        running = rewards[step] + gamma * running
        running_discount = gamma * running_discount
        partial[step], discount[step], bootstrap[step] = running, running_discount, running_index
    return ReturnTargets(partial.ravel(), discount.ravel(), bootstrap.ravel())


class OfflineTransitions:
    """Every transition of a dataset (see :mod:`sb3_ext.data`) in memory, with its return targets.

    Meant for the small datasets that guide on-policy learning; a dataset too large for memory
    belongs in an off-policy replay buffer (:class:`~sb3_ext.callbacks.OfflineSeed`).

    :param path: the dataset directory (or its manifest.json)
    :param observation_space: the model's observation space; the dataset's must equal it
    :param action_space: the model's action space; the dataset's must equal it
    :param gamma: discount of the return targets
    """

    def __init__(self, path: str | os.PathLike, observation_space: spaces.Space, action_space: spaces.Space,
                 gamma: float) -> None:
        manifest = read_manifest(path)
        for name, ours in (("observation", observation_space), ("action", action_space)):
            if manifest[f"{name}_space"] != ours:
                raise ValueError(f"{path}: {name} space {manifest[f'{name}_space']} does not match the model's {ours}")
        chunks = list(iter_chunks(path))
        if not chunks:
            raise ValueError(f"{path}: the dataset holds no transitions")
        fields = {field: np.concatenate([chunk[field] for chunk in chunks]) for field in chunks[0]}
        n_envs = int(manifest["n_envs"])
        count = len(fields["rewards"]) - len(fields["rewards"]) % n_envs
        self.observations = fields["observations"][:count]
        self.next_observations = fields["next_observations"][:count]
        self.actions = fields["actions"][:count]
        self.rewards = fields["rewards"][:count].astype(np.float32)
        self.targets = return_targets(fields["rewards"], fields["dones"], fields["timeouts"], n_envs, gamma)

    def __len__(self) -> int:
        return len(self.rewards)
