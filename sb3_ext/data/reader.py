"""Read chunk files back, and stream them into an SB3 replay buffer."""

from __future__ import annotations

import os
import warnings
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from gymnasium import spaces
from stable_baselines3.common.buffers import DictReplayBuffer, NStepReplayBuffer, ReplayBuffer

from sb3_ext.common.atomic import sha256_file
from sb3_ext.data.format import FIELDS, chunk_path, field_layout, manifest_path, read_manifest

Chunk = dict[str, np.ndarray]


def check_chunk_files(manifest: dict[str, Any], directory: Path, verify: bool = True) -> list[Path]:
    """Paths of every chunk, after checking they all exist, hold the fields the manifest implies
    (shapes and dtypes, from the ``.npy`` headers only) and, with ``verify``, have their sha256.

    Everything is checked before anything is returned, so that a caller can refuse a damaged
    dataset before writing a single transition anywhere.
    """
    layout = field_layout(manifest["observation_space"], manifest["action_space"])
    paths = []
    for entry in manifest["chunks"]:
        path = chunk_path(directory, entry)
        if not path.is_file():
            raise ValueError(f"{path}: chunk listed in {manifest_path(directory)} is missing")
        if verify and (digest := sha256_file(path)) != entry["sha256"]:
            raise ValueError(
                f"{path}: sha256 {digest[:12]}... does not match the manifest's {entry['sha256'][:12]}...; "
                "the chunk is corrupt or was modified"
            )
        for field, (shape, dtype) in _stored_layout(path).items():
            expected_shape, expected_dtype = (entry["n_transitions"], *layout[field][0]), layout[field][1]
            if shape != expected_shape or dtype != expected_dtype:
                raise ValueError(
                    f"{path}: {field} is {dtype}{list(shape)}, the manifest implies {expected_dtype}{list(expected_shape)}"
                )
        paths.append(path)
    return paths


# .npy header readers by format version; np.savez writes 1.0, or 2.0 for very large headers.
_HEADER_READERS = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}


def _stored_layout(path: Path) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """Shape and dtype of each field of a chunk, read from the .npy headers without loading the arrays."""
    layout = {}
    try:
        with zipfile.ZipFile(path) as archive:
            for field in FIELDS:
                with archive.open(f"{field}.npy") as member:
                    version = np.lib.format.read_magic(member)
                    if version not in _HEADER_READERS:
                        raise ValueError(f".npy format version {version} is not supported")
                    shape, _, dtype = _HEADER_READERS[version](member)
                layout[field] = (shape, dtype)
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as error:
        raise ValueError(f"{path}: not a readable chunk ({error})") from None
    return layout


def read_chunk(path: Path) -> Chunk:
    """Load one chunk whose layout :func:`check_chunk_files` has checked."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {field: archive[field] for field in FIELDS}
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as error:
        raise ValueError(f"{path}: not a readable chunk ({error})") from None


def iter_chunks(path: str | os.PathLike, verify: bool = True) -> Iterator[Chunk]:
    """Yield a dataset's chunks in order, one dict of arrays at a time (actions as recorded).

    The manifest and all chunk files (their layout, and hashes with ``verify``) are checked before
    the first chunk is yielded.
    """
    manifest = read_manifest(path)
    directory = manifest_path(path).parent
    for file in check_chunk_files(manifest, directory, verify):
        yield read_chunk(file)


def load_chunks(buffer: ReplayBuffer, path: str | os.PathLike, verify: bool = True) -> int:
    """Stream a dataset into an SB3 replay buffer, one chunk in memory at a time.

    Works with the ``ReplayBuffer`` of DQN, DDPG, TD3, SAC (and their sb3-contrib / sb3-ext
    relatives), any ``n_envs``, ``optimize_memory_usage`` and ``NStepReplayBuffer`` (with the recording's ``n_envs``,
    or one env: then each recorded env's steps in turn, :func:`one_env_after_another`). Rows are
    written with array slices, wrapping around the ring like ``buffer.add`` would; Box actions are
    rescaled to [-1, 1] as SB3 stores them. With more than one env per buffer row, transitions
    fill rows in recording order; a remainder smaller than one row is dropped (with a warning).

    Nothing is written unless the manifest, the spaces and every chunk file (the shapes and dtypes
    of its fields and, with ``verify``, its sha256) check out. Should a chunk's data still prove
    unreadable while loading (damaged past its headers, possible with ``verify=False``), the
    buffer's position is restored: the transitions streamed so far are not sampled, except where
    they replaced older rows of a buffer that was already full.

    :param buffer: the replay buffer to fill (e.g. ``model.replay_buffer``)
    :param path: the dataset directory, or its manifest.json
    :param verify: check every chunk's sha256 before loading
    :return: the number of transitions written into the buffer
    """
    if isinstance(buffer, DictReplayBuffer) or not isinstance(buffer, ReplayBuffer):
        raise ValueError(f"load_chunks: {type(buffer).__name__} is not supported; expected an SB3 ReplayBuffer")
    manifest = read_manifest(path)
    file = manifest_path(path)
    for name in ("observation", "action"):
        ours, theirs = manifest[f"{name}_space"], getattr(buffer, f"{name}_space")
        if ours != theirs:
            raise ValueError(f"{file}: {name} space {ours} does not match the replay buffer's {theirs}")
    action_space = manifest["action_space"]
    if isinstance(action_space, spaces.Box) and not np.all(np.isfinite(action_space.high - action_space.low)):
        raise ValueError(f"{file}: Box actions with infinite bounds cannot be rescaled to [-1, 1] for SB3")
    # Both read the next rows of the same env column, so that column must hold one env's history; a
    # one-env n-step buffer takes each recorded env's history in turn instead (one_env_at_a_time).
    one_env_at_a_time = isinstance(buffer, NStepReplayBuffer) and buffer.n_envs == 1 < manifest["n_envs"]
    if one_env_at_a_time and not buffer.handle_timeout_termination:
        raise ValueError(f"{file}: a one-env n-step buffer takes a {manifest['n_envs']}-env recording only with "
                         "handle_timeout_termination=True (the cuts between envs are marked as time limits)")
    mismatch = buffer.n_envs != manifest["n_envs"] and not one_env_at_a_time
    if (isinstance(buffer, NStepReplayBuffer) or buffer.optimize_memory_usage) and mismatch:
        raise ValueError(
            f"{file}: recorded with n_envs={manifest['n_envs']}, but this buffer (n-step or memory-optimised) "
            f"has n_envs={buffer.n_envs}; they must match (or be 1 for an n-step buffer)"
        )
    step = manifest["n_envs"] if one_env_at_a_time else buffer.n_envs  # rows written together
    files = check_chunk_files(manifest, file.parent, verify)

    start_pos, start_full = buffer.pos, buffer.full
    written = 0
    pending: Chunk | None = None
    try:
        for chunk_file in files:
            chunk = read_chunk(chunk_file)
            if pending is not None:
                chunk = {field: np.concatenate((pending[field], chunk[field])) for field in FIELDS}
            usable = len(chunk["rewards"]) - len(chunk["rewards"]) % step
            _write_rows(buffer, one_env_after_another(chunk, usable, step) if one_env_at_a_time else chunk, usable,
                        action_space)
            written += usable
            leftover = usable < len(chunk["rewards"])
            pending = {field: values[usable:].copy() for field, values in chunk.items()} if leftover else None
            del chunk  # release it before the next one is read: one chunk in memory, not two
    except BaseException:
        buffer.pos, buffer.full = start_pos, start_full
        raise
    if pending is not None:
        warnings.warn(
            f"{file}: {len(pending['rewards'])} transitions do not fill a row of {buffer.n_envs} envs and were not loaded",
            stacklevel=2,
        )
    return written


def one_env_after_another(chunk: Chunk, count: int, n_envs: int) -> Chunk:
    """The first ``count`` rows of a chunk recorded from ``n_envs`` interleaved envs, reordered so
    that each env's steps follow one another, env after env; the last step of each env's stretch
    that did not end its episode is marked as a time limit, so that an n-step return stops there
    and bootstraps from that step's own next observation instead of running into the next env's."""
    rows = count // n_envs
    reordered = {field: np.swapaxes(values[:count].reshape(rows, n_envs, *values.shape[1:]), 0, 1)
                 .reshape(count, *values.shape[1:]) for field, values in chunk.items()}
    cut = np.arange(rows - 1, count, rows)
    reordered["timeouts"][cut] |= ~reordered["dones"][cut].astype(bool)
    return reordered


def _write_rows(buffer: ReplayBuffer, chunk: Chunk, count: int, action_space: spaces.Space) -> None:
    """Write the first ``count`` transitions (a multiple of ``buffer.n_envs``) at ``buffer.pos``."""
    n_envs = buffer.n_envs
    # SB3's off-policy algorithms keep Box actions scaled to [-1, 1] (policy.scale_action).
    box = action_space if isinstance(action_space, spaces.Box) else None
    if box is not None:
        low, half_range = box.low, (box.high - box.low) / 2
    rows = count // n_envs
    done = 0
    while done < rows:
        take = min(rows - done, buffer.buffer_size - buffer.pos)
        first, last = done * n_envs, (done + take) * n_envs
        target = slice(buffer.pos, buffer.pos + take)
        buffer.observations[target] = chunk["observations"][first:last].reshape(take, n_envs, *buffer.obs_shape)
        next_observations = chunk["next_observations"][first:last].reshape(take, n_envs, *buffer.obs_shape)
        if buffer.optimize_memory_usage:
            # Same layout as buffer.add: the next observation lives in the following row.
            buffer.observations[(buffer.pos + take) % buffer.buffer_size] = next_observations[-1]
        else:
            buffer.next_observations[target] = next_observations
        buffer.actions[target] = chunk["actions"][first:last].reshape(take, n_envs, buffer.action_dim)
        if box is not None:  # in place on the buffer rows: no chunk-sized temporaries
            actions = buffer.actions[target]
            actions -= low
            actions /= half_range
            actions -= 1.0
        buffer.rewards[target] = chunk["rewards"][first:last].reshape(take, n_envs)
        buffer.dones[target] = chunk["dones"][first:last].reshape(take, n_envs)
        if buffer.handle_timeout_termination:
            buffer.timeouts[target] = chunk["timeouts"][first:last].reshape(take, n_envs)
        done += take
        buffer.pos += take
        if buffer.pos == buffer.buffer_size:
            buffer.full, buffer.pos = True, 0
