"""Write transitions to chunk files, from arrays or by running a policy in a vectorised env."""

from __future__ import annotations

import datetime
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import gymnasium
import numpy as np
import stable_baselines3
from gymnasium import spaces
from stable_baselines3.common.vec_env import VecEnv

from sb3_ext import __version__ as sb3_ext_version
from sb3_ext.common.atomic import atomic_open, sha256_file
from sb3_ext.data.format import (
    CHUNK_DIR,
    FIELDS,
    FORMAT_VERSION,
    chunk_name,
    field_layout,
    manifest_path,
    space_to_json,
    write_manifest,
)

# What ChunkWriter.record accepts as a policy: "random", anything with SB3's ``predict``, or a
# function from a batch of observations to a batch of actions.
PolicyLike = Any
ActionFunction = Callable[[np.ndarray], np.ndarray]


def action_function(policy: PolicyLike, action_space: spaces.Space, deterministic: bool = True) -> ActionFunction:
    """Turn ``"random"``, an SB3 model/policy or a callable into ``observations -> actions``."""
    if isinstance(policy, str):
        if policy != "random":
            raise ValueError(f"policy={policy!r}: expected 'random', an SB3 model, or a callable")
        return lambda observations: np.stack([action_space.sample() for _ in range(len(observations))])
    if hasattr(policy, "predict"):
        return lambda observations: policy.predict(observations, deterministic=deterministic)[0]
    if callable(policy):
        return policy
    raise ValueError(f"policy={policy!r}: expected 'random', an SB3 model, or a callable")


def describe_policy(policy: PolicyLike) -> str:
    """A short provenance string for a policy."""
    if isinstance(policy, str):
        return policy
    kind = "model" if hasattr(policy, "predict") else "callable"
    return f"{kind}:{getattr(policy, '__qualname__', type(policy).__qualname__)}"


class ChunkWriter:
    """Stream transitions into ``<directory>/chunks/chunk_NNNNN.npz`` files and a manifest.

    Transitions are staged in preallocated arrays of ``chunk_size`` rows, so memory stays at one
    chunk however long the recording. Each chunk and finally the manifest are written to a
    temporary file and renamed into place: a reader either sees a complete dataset (the manifest
    exists) or none. Use it as a context manager, or call :meth:`close` to write the manifest; if
    the recording fails, no manifest is written.

    :param directory: dataset directory (by convention ``data/generated/<version>``)
    :param observation_space: space of the observations (Box, Discrete, MultiDiscrete, MultiBinary)
    :param action_space: space of the actions
    :param chunk_size: transitions per chunk file (a multiple of ``n_envs``)
    :param env_id: gymnasium id of the environment, recorded in the manifest
    :param n_envs: number of parallel envs the transitions are interleaved from
    :param provenance: how the data was produced (policy, seed, ...), recorded in the manifest
    :param overwrite: replace an existing dataset in ``directory`` instead of refusing
    """

    def __init__(
        self,
        directory: str | os.PathLike,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        chunk_size: int = 50_000,
        env_id: str | None = None,
        n_envs: int = 1,
        provenance: dict[str, Any] | None = None,
        overwrite: bool = False,
    ) -> None:
        if int(n_envs) != n_envs or n_envs < 1:
            raise ValueError(f"n_envs={n_envs!r}: expected a positive integer")
        if int(chunk_size) != chunk_size or chunk_size < 1 or chunk_size % n_envs:
            raise ValueError(f"chunk_size={chunk_size!r}: expected a positive multiple of n_envs={n_envs}")
        self.directory = Path(directory)
        self.observation_space = observation_space
        self.action_space = action_space
        self.chunk_size = int(chunk_size)
        self.env_id = env_id
        self.n_envs = int(n_envs)
        self.provenance = dict(provenance or {})
        self._header = {  # validates both spaces before anything touches the disk
            "observation_space": space_to_json(observation_space),
            "action_space": space_to_json(action_space),
        }
        self._prepare_directory(overwrite)

        layout = field_layout(observation_space, action_space)
        self._staging = {field: np.empty((self.chunk_size, *shape), dtype) for field, (shape, dtype) in layout.items()}
        self._action_shape = layout["actions"][0]
        self._filled = 0
        self._chunks: list[dict[str, Any]] = []
        self.n_transitions = 0
        self.manifest: dict[str, Any] | None = None

    def _prepare_directory(self, overwrite: bool) -> None:
        manifest = manifest_path(self.directory)
        if manifest.exists():
            if not overwrite:
                raise ValueError(f"{manifest}: a dataset already exists here; choose a new version or overwrite=True")
            manifest.unlink()  # first, so that a half-rewritten dataset is never taken for a complete one
        # Without a manifest, chunk files here are leftovers of an unfinished run: clear them.
        for stale in (self.directory / CHUNK_DIR).glob("chunk_*.npz"):
            stale.unlink()

    def add(
        self,
        observations: np.ndarray,
        next_observations: np.ndarray,
        actions: np.ndarray,
        rewards: np.ndarray,
        dones: np.ndarray,
        timeouts: np.ndarray,
    ) -> None:
        """Append a batch of transitions (axis 0 indexes transitions, in recording order)."""
        if self.manifest is not None:
            raise ValueError(f"{manifest_path(self.directory)}: the dataset is closed; open a new ChunkWriter")
        batch = dict(zip(FIELDS, (observations, next_observations, actions, rewards, dones, timeouts), strict=False))
        count = len(rewards)
        for field, values in batch.items():
            values = np.asarray(values)
            expected = (count, *self._staging[field].shape[1:])
            if values.shape != expected:
                raise ValueError(f"ChunkWriter.add: {field} has shape {values.shape}, expected {expected}")
            batch[field] = values
        start = 0
        while start < count:
            take = min(count - start, self.chunk_size - self._filled)
            for field, values in batch.items():
                self._staging[field][self._filled : self._filled + take] = values[start : start + take]
            self._filled += take
            start += take
            if self._filled == self.chunk_size:
                self._write_chunk()

    def _write_chunk(self) -> None:
        name = chunk_name(len(self._chunks))
        path = self.directory / name
        arrays: dict[str, Any] = {field: staged[: self._filled] for field, staged in self._staging.items()}
        # Uncompressed: reading back is then a plain copy, which is what makes streaming fast.
        with atomic_open(path, "wb") as handle:
            np.savez(handle, **arrays)
        self._chunks.append({"file": name, "n_transitions": self._filled, "sha256": sha256_file(path)})
        self.n_transitions += self._filled
        self._filled = 0

    def add_step(
        self,
        observations: np.ndarray,
        actions: np.ndarray,
        new_observations: np.ndarray,
        rewards: np.ndarray,
        dones: np.ndarray,
        infos: list[dict[str, Any]],
    ) -> None:
        """Append one ``VecEnv.step`` of all ``n_envs`` envs, the way SB3's off-policy buffers store it.

        ``observations`` are those the actions were taken on and ``new_observations`` what
        ``step`` returned; where an episode ended, the next observation is the
        ``terminal_observation`` from ``infos`` (the VecEnv has already reset that env), and
        ``TimeLimit.truncated`` marks the time-limit ends.
        """
        next_observations = np.array(new_observations, copy=True)
        for index in np.flatnonzero(dones):
            next_observations[index] = infos[index]["terminal_observation"]
        timeouts = np.array([info.get("TimeLimit.truncated", False) for info in infos])
        actions = np.asarray(actions).reshape(len(rewards), *self._action_shape)
        self.add(observations, next_observations, actions, rewards, dones, timeouts)

    def record(
        self,
        env: VecEnv,
        policy: PolicyLike,
        n_transitions: int,
        deterministic: bool = True,
    ) -> None:
        """Run ``policy`` in ``env`` for ``n_transitions`` transitions and add them.

        ``env`` is an SB3 VecEnv with this writer's ``n_envs``; it is reset first. Terminal
        observations and time-limit truncations are taken from ``infos`` as SB3's off-policy
        algorithms do. Box actions are clipped to the action space before stepping.
        """
        if env.num_envs != self.n_envs:
            raise ValueError(f"ChunkWriter.record: env has {env.num_envs} envs, the writer expects n_envs={self.n_envs}")
        if int(n_transitions) != n_transitions or n_transitions < 1 or n_transitions % self.n_envs:
            raise ValueError(f"n_transitions={n_transitions!r}: expected a positive multiple of n_envs={self.n_envs}")
        for name, space in (("observation", env.observation_space), ("action", env.action_space)):
            if space != getattr(self, f"{name}_space"):
                raise ValueError(f"ChunkWriter.record: env {name} space {space} differs from the writer's")
        act = action_function(policy, self.action_space, deterministic)
        # The spaces match the writer's, which have fixed shapes: the observations are arrays.
        observations = cast(np.ndarray, env.reset())
        for _ in range(int(n_transitions) // self.n_envs):
            actions = np.asarray(act(observations))
            if isinstance(self.action_space, spaces.Box):
                actions = np.clip(actions, self.action_space.low, self.action_space.high)
            new_observations, rewards, dones, infos = env.step(actions)
            self.add_step(observations, actions, cast(np.ndarray, new_observations), rewards, dones, infos)
            observations = cast(np.ndarray, new_observations)

    def close(self) -> dict[str, Any]:
        """Write the last (partial) chunk and the manifest; returns the manifest. Idempotent."""
        if self.manifest is not None:
            return self.manifest
        if self._filled:
            self._write_chunk()
        self.manifest = {
            "format_version": FORMAT_VERSION,
            "env_id": self.env_id,
            **self._header,
            "n_transitions": self.n_transitions,
            "n_envs": self.n_envs,
            "chunk_size": self.chunk_size,
            "chunks": self._chunks,
            "fields": {field: {"dtype": str(staged.dtype), "shape": list(staged.shape[1:])}
                       for field, staged in self._staging.items()},
            "provenance": {
                **self.provenance,
                "created_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                "sb3_ext_version": sb3_ext_version,
                "stable_baselines3_version": stable_baselines3.__version__,
                "gymnasium_version": gymnasium.__version__,
            },
        }
        write_manifest(manifest_path(self.directory), self.manifest)
        return self.manifest

    def __enter__(self) -> ChunkWriter:
        return self

    def __exit__(self, exc_type: Any, *_: Any) -> None:
        if exc_type is None:
            self.close()
