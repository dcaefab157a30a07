"""SyntheticDatasetBuilder: record a versioned offline dataset by running a policy in an env."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from stable_baselines3.common.env_util import make_vec_env

from sb3_ext.data.format import manifest_path, read_manifest, write_manifest
from sb3_ext.data.writer import ChunkWriter, PolicyLike, describe_policy


class SyntheticDatasetBuilder:
    """Roll out ``policy`` in ``env_id`` and store the transitions under ``<root>/<version>/``.

    ``policy`` is ``"random"`` (uniform actions), any SB3 model (its ``predict``), or a callable
    mapping a batch of observations to a batch of actions. Environments are created with SB3's
    ``make_vec_env`` and seeded with ``seed`` (and ``seed + i`` for env ``i``), so a build is
    reproducible for a deterministic policy. A version that already exists is refused unless
    ``overwrite=True``: a dataset that others may have loaded should not change under its name.

    :param env_id: registered gymnasium id
    :param policy: ``"random"``, an SB3 model, or a callable
    :param n_transitions: number of transitions to record (a multiple of ``n_envs``)
    :param version: name of the dataset directory under ``root``
    :param chunk_size: transitions per chunk file
    :param seed: seed of the environments and of the random policy
    :param root: parent directory of the versions
    :param n_envs: parallel environments used for the rollout
    :param deterministic: passed to a model's ``predict``
    :param env_kwargs: keyword arguments for the environment constructor
    :param overwrite: replace an existing dataset of the same version
    """

    def __init__(
        self,
        env_id: str,
        policy: PolicyLike = "random",
        n_transitions: int = 100_000,
        version: str = "v1",
        chunk_size: int = 50_000,
        seed: int = 0,
        root: str | os.PathLike = "data/generated",
        n_envs: int = 1,
        deterministic: bool = True,
        env_kwargs: dict[str, Any] | None = None,
        overwrite: bool = False,
    ) -> None:
        if not version or Path(version).name != version or version in (".", ".."):
            raise ValueError(f"version={version!r}: expected a plain directory name such as 'v1'")
        self.env_id = env_id
        self.policy = policy
        self.n_transitions = n_transitions
        self.version = version
        self.chunk_size = chunk_size
        self.seed = seed
        self.directory = Path(root) / version
        self.n_envs = n_envs
        self.deterministic = deterministic
        self.env_kwargs = env_kwargs
        self.overwrite = overwrite

    def build(self) -> Path:
        """Record the dataset; returns its directory (the ``path`` for :func:`load_chunks`)."""
        env = make_vec_env(self.env_id, n_envs=self.n_envs, seed=self.seed, env_kwargs=self.env_kwargs)
        try:
            env.action_space.seed(self.seed)  # the "random" policy samples from this space
            writer = ChunkWriter(
                self.directory,
                env.observation_space,
                env.action_space,
                chunk_size=self.chunk_size,
                env_id=self.env_id,
                n_envs=self.n_envs,
                provenance={
                    "builder": type(self).__name__,
                    "policy": describe_policy(self.policy),
                    "deterministic": self.deterministic,
                    "seed": self.seed,
                    "env_kwargs": self.env_kwargs or {},
                },
                overwrite=self.overwrite,
            )
            with writer:
                writer.record(env, self.policy, self.n_transitions, deterministic=self.deterministic)
        finally:
            env.close()
        return self.directory

    def export_manifest(self, path: str | os.PathLike | None = None) -> dict[str, Any]:
        """The built dataset's manifest as a JSON-ready dict; with ``path``, also write a copy there."""
        source = manifest_path(self.directory)
        read_manifest(source)  # refuses a missing, partial or newer-format dataset with a clear message
        manifest = json.loads(source.read_text())
        if path is not None:
            write_manifest(Path(path), manifest)
        return manifest
