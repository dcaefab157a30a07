"""OfflineSeed: fill a model's replay buffer from an offline dataset when training starts."""

from __future__ import annotations

import os

from stable_baselines3.common.callbacks import BaseCallback

from sb3_ext.data.reader import load_chunks


class OfflineSeed(BaseCallback):
    """Stream an offline dataset (see :mod:`sb3_ext.data`) into the replay buffer at training start.

    Works with any SB3 off-policy model whose buffer is a ``ReplayBuffer`` (DQN, DDPG, TD3, SAC,
    DelayedTD3, ...). The dataset is loaded once per callback, so a second ``learn()`` with the
    same callback does not duplicate it. Online ``learning_starts`` still counts online steps
    only: with a seeded buffer a small value lets updates start right away.

    From an rl-zoo3 YAML::

        callback:
          - sb3_ext.callbacks.OfflineSeed:
              path: data/generated/pendulum-expert-v1

    :param path: the dataset directory (or its manifest.json)
    :param verify: check every chunk's sha256 before loading
    """

    def __init__(self, path: str | os.PathLike, verify: bool = True, verbose: int = 0) -> None:
        super().__init__(verbose)
        self.path = path
        self.verify = verify
        self.n_loaded = 0

    def _on_training_start(self) -> None:
        if self.n_loaded:
            return
        replay_buffer = getattr(self.model, "replay_buffer", None)
        if replay_buffer is None:
            raise ValueError(f"OfflineSeed: {type(self.model).__name__} has no replay buffer to seed")
        self.n_loaded = load_chunks(replay_buffer, self.path, verify=self.verify)
        self.logger.record("offline/transitions_loaded", self.n_loaded)
        if self.verbose:
            print(f"OfflineSeed: loaded {self.n_loaded} transitions from {self.path}")

    def _on_step(self) -> bool:
        return True
