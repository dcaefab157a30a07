"""The on-disk format of an offline dataset, shared by the writer and the reader.

A dataset is one directory (by convention ``data/generated/<version>/``)::

    manifest.json               what the chunks hold, written last: its presence means "complete"
    chunks/chunk_00000.npz      uncompressed .npz, one array per field, transitions on axis 0
    chunks/chunk_00001.npz ...

(A training run's audit trail is another file, ``run_manifest.json``, written by
:mod:`sb3_ext.callbacks.manifest`.)

Each chunk holds ``observations``, ``next_observations``, ``actions``, ``rewards``, ``dones`` and
``timeouts``, with SB3's replay-buffer meaning: ``dones`` is true when the episode ended for any
reason and ``timeouts`` when that end was a time-limit truncation (so targets still bootstrap
there). Actions are stored as the environment received them; the reader rescales Box actions to
[-1, 1], the form SB3's off-policy algorithms keep in their buffers. Transitions recorded from
``n_envs`` parallel environments are interleaved step by step (env 0..n-1 of step t, then step
t+1), which is exactly the row order of an SB3 buffer with that many envs.

The manifest (see :func:`read_manifest`) records the format version, the spaces, the counts,
how the data was produced and the sha256 of every chunk.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from pathlib import Path
from typing import Any

import numpy as np
from gymnasium import spaces

FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"
CHUNK_DIR = "chunks"
FIELDS = ("observations", "next_observations", "actions", "rewards", "dones", "timeouts")
MANIFEST_KEYS = (
    "format_version",
    "env_id",
    "observation_space",
    "action_space",
    "n_transitions",
    "n_envs",
    "chunk_size",
    "chunks",
    "provenance",
)


def _fixed_shape(space: spaces.Space) -> tuple[int, ...]:
    if space.shape is None:
        raise ValueError(f"offline chunks store arrays of one fixed shape; {space} has none")
    return space.shape


def field_layout(observation_space: spaces.Space, action_space: spaces.Space) -> dict[str, tuple[tuple, np.dtype]]:
    """Per-transition shape and dtype of each chunk field (axis 0 of the stored arrays is the transition)."""
    return {
        "observations": (_fixed_shape(observation_space), np.dtype(observation_space.dtype)),
        "next_observations": (_fixed_shape(observation_space), np.dtype(observation_space.dtype)),
        "actions": (_fixed_shape(action_space), np.dtype(action_space.dtype)),
        "rewards": ((), np.dtype(np.float32)),
        "dones": ((), np.dtype(np.bool_)),
        "timeouts": ((), np.dtype(np.bool_)),
    }


def chunk_name(index: int) -> str:
    """Relative path of chunk number ``index`` inside a dataset directory."""
    return f"{CHUNK_DIR}/chunk_{index:05d}.npz"


def manifest_path(path: str | os.PathLike) -> Path:
    """The manifest of a dataset given either its directory or the manifest file itself."""
    path = Path(path)
    return path if path.name == MANIFEST_NAME else path / MANIFEST_NAME


def sha256_of(path: Path, block_size: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in blocks so that memory stays bounded."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(block_size):
            digest.update(block)
    return digest.hexdigest()


def atomic_write_bytes(path: Path, write: Any) -> None:
    """Call ``write(file_object)`` on a temporary file next to ``path``, then rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # A unique name opened with "x" (rather than mkstemp) keeps the usual umask permissions.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
    try:
        with open(tmp, "xb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _bounds_to_json(values: np.ndarray) -> Any:
    """A Box bound as JSON: one number when all entries agree, else a flat list; +-inf as strings."""
    flat = values.astype(np.float64).ravel()
    encoded = [float(v) if np.isfinite(v) else ("inf" if v > 0 else "-inf") for v in flat]
    return encoded[0] if flat.size and np.all(flat == flat[0]) else encoded


def _bounds_from_json(encoded: Any, shape: tuple[int, ...]) -> np.ndarray:
    values = np.array(encoded if isinstance(encoded, list) else [encoded], dtype=np.float64)
    return np.broadcast_to(values, shape) if values.size == 1 else values.reshape(shape)


def space_to_json(space: spaces.Space) -> dict[str, Any]:
    """Describe a Box, Discrete, MultiDiscrete or MultiBinary space as a JSON-able dict."""
    if isinstance(space, spaces.Box):
        return {
            "type": "Box",
            "shape": list(space.shape),
            "dtype": str(space.dtype),
            "low": _bounds_to_json(space.low),
            "high": _bounds_to_json(space.high),
        }
    if isinstance(space, spaces.Discrete):
        return {"type": "Discrete", "n": int(space.n), "start": int(space.start), "dtype": str(space.dtype)}
    if isinstance(space, spaces.MultiDiscrete):
        return {"type": "MultiDiscrete", "nvec": space.nvec.tolist(), "dtype": str(space.dtype)}
    if isinstance(space, spaces.MultiBinary):
        return {"type": "MultiBinary", "n": np.asarray(space.n).tolist()}
    raise ValueError(f"{space}: offline chunks support Box, Discrete, MultiDiscrete and MultiBinary spaces")


def space_from_json(description: dict[str, Any]) -> spaces.Space:
    """Inverse of :func:`space_to_json`."""
    kind = description["type"]
    if kind == "Box":
        shape = tuple(description["shape"])
        dtype = np.dtype(description["dtype"])
        low = _bounds_from_json(description["low"], shape).astype(dtype)
        high = _bounds_from_json(description["high"], shape).astype(dtype)
        return spaces.Box(low=low, high=high, shape=shape, dtype=dtype)
    if kind == "Discrete":
        return spaces.Discrete(description["n"], start=description["start"], dtype=description["dtype"])
    if kind == "MultiDiscrete":
        return spaces.MultiDiscrete(description["nvec"], dtype=description["dtype"])
    if kind == "MultiBinary":
        return spaces.MultiBinary(description["n"])
    raise ValueError(f"unknown space type {kind!r}")


def write_manifest(path: Path, manifest: dict[str, Any]) -> None:
    """Write ``manifest`` to ``path`` atomically, as indented JSON."""
    text = json.dumps(manifest, indent=2) + "\n"
    atomic_write_bytes(path, lambda handle: handle.write(text.encode()))


def read_manifest(path: str | os.PathLike) -> dict[str, Any]:
    """Read and check a dataset's manifest; ``path`` is the dataset directory or its manifest.json.

    Returns the manifest with ``observation_space``/``action_space`` rebuilt as gymnasium spaces.
    Raises ValueError naming the file when it is missing, unreadable, incomplete, from a newer
    format version, or inconsistent with itself.
    """
    file = manifest_path(path)
    if not file.is_file():
        raise ValueError(f"{file}: no manifest (not an sb3-ext dataset, or its writing never finished)")
    try:
        manifest = json.loads(file.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{file}: not a readable JSON manifest ({error})") from None
    missing = [key for key in MANIFEST_KEYS if key not in manifest] if isinstance(manifest, dict) else MANIFEST_KEYS
    if missing:
        raise ValueError(f"{file}: manifest lacks {', '.join(missing)}")
    version = manifest["format_version"]
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ValueError(
            f"{file}: format_version {version!r} is newer than this sb3-ext reads ({FORMAT_VERSION}); "
            "upgrade sb3-ext to load it"
        )
    try:
        manifest["observation_space"] = space_from_json(manifest["observation_space"])
        manifest["action_space"] = space_from_json(manifest["action_space"])
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(f"{file}: a space in the manifest cannot be read ({error!r})") from None
    counted = sum(chunk["n_transitions"] for chunk in manifest["chunks"])
    if counted != manifest["n_transitions"]:
        raise ValueError(
            f"{file}: chunks hold {counted} transitions but the manifest says n_transitions={manifest['n_transitions']}"
        )
    return manifest
