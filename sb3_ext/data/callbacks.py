"""Offline datasets and training: seed a replay buffer from one, or record one while a model trains."""

from __future__ import annotations

import os
from typing import Any, cast

import numpy as np

from stable_baselines3.common.callbacks import BaseCallback

from sb3_ext.data.reader import load_chunks
from sb3_ext.data.writer import ChunkWriter


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


class ChunkRecorder(BaseCallback):
    """Record every transition a model experiences during ``learn()`` as an offline dataset.

    Works with any SB3 algorithm, off-policy or on-policy: at each step it takes the observation
    the model acted on, the actions sent to the environment (clipped ones for on-policy Box
    actions), and what the step returned, and hands them to a :class:`~sb3_ext.data.ChunkWriter`
    (so memory stays at one chunk). The manifest is written when training ends; if ``learn()``
    fails, the dataset stays without a manifest and readers refuse it. One recorder makes one
    dataset: a second ``learn()`` with it is refused rather than appended to a closed dataset.

    :param directory: dataset directory (by convention ``data/generated/<version>``)
    :param chunk_size: transitions per chunk file (a multiple of the number of envs)
    :param overwrite: replace an existing dataset in ``directory`` instead of refusing
    """

    def __init__(self, directory: str | os.PathLike, chunk_size: int = 50_000, overwrite: bool = False,
                 verbose: int = 0) -> None:
        super().__init__(verbose)
        self.directory = directory
        self.chunk_size = chunk_size
        self.overwrite = overwrite
        self.writer: ChunkWriter | None = None

    def _on_training_start(self) -> None:
        if self.writer is not None:
            raise ValueError(f"ChunkRecorder: {self.directory} was already recorded; use a new recorder (and version)")
        env = self.training_env
        if self.model.get_vec_normalize_env() is not None:
            # The model's observations are normalised by statistics that drift during training: such a
            # dataset would neither match the env's observation space nor be consistent with itself.
            raise ValueError("ChunkRecorder: the env is wrapped in VecNormalize; record an unnormalised env")
        spec = env.get_attr("spec", indices=0)[0]
        self.writer = ChunkWriter(
            self.directory,
            env.observation_space,
            env.action_space,
            chunk_size=self.chunk_size,
            env_id=spec.id if spec is not None else None,
            n_envs=env.num_envs,
            provenance={"recorder": type(self).__name__, "algorithm": type(self.model).__name__,
                        "seed": self.model.seed},
            overwrite=self.overwrite,
        )

    def _writer(self) -> ChunkWriter:
        if self.writer is None:
            raise RuntimeError("ChunkRecorder: used before learn() created its writer")
        return self.writer

    def _on_step(self) -> bool:
        local: dict[str, Any] = self.locals
        # Called after env.step and before the model moves on: _last_obs is still the observation acted on.
        # It is private, but SB3 has no public hook for it: the off-policy loop's locals hold no copy.
        actions = local["clipped_actions"] if "clipped_actions" in local else local["actions"]
        # ChunkWriter spaces have fixed shapes (checked when it was created): observations are arrays.
        self._writer().add_step(cast(np.ndarray, self.model._last_obs), actions, local["new_obs"], local["rewards"],
                                local["dones"], local["infos"])
        return True

    def _on_training_end(self) -> None:
        manifest = self._writer().close()
        self.logger.record("offline/transitions_recorded", manifest["n_transitions"])
        if self.verbose:
            print(f"ChunkRecorder: recorded {manifest['n_transitions']} transitions in {self.directory}")
