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

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
from gymnasium import spaces

from sb3_ext.common.atomic import atomic_write_text

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


def _bounds_to_json(values: np.ndarray) -> Any:
    """A Box bound as JSON: one number when all entries agree, else a flat list; +-inf as strings."""
    flat = values.astype(np.float64).ravel()
    encoded = [float(v) if np.isfinite(v) else ("inf" if v > 0 else "-inf") for v in flat]
    return encoded[0] if flat.size and np.all(flat == flat[0]) else encoded


def _bounds_from_json(encoded: Any, shape: tuple[int, ...], key: str) -> np.ndarray:
    items = encoded if isinstance(encoded, list) else [encoded]
    if not all((isinstance(v, (int, float)) and not isinstance(v, bool)) or v in ("inf", "-inf") for v in items):
        raise ValueError(f"{key}: expected a number, 'inf', '-inf' or a list of them")
    values = np.array(items, dtype=np.float64)
    if values.size == 1:
        return np.broadcast_to(values, shape)
    if values.size != math.prod(shape):
        raise ValueError(f"{key}: {values.size} values for shape {list(shape)}")
    return values.reshape(shape)


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


#: Largest observation or action a manifest may describe, in bytes per transition: a shape asking
#: for more is a damaged manifest, refused before anything is allocated.
MAX_TRANSITION_BYTES = 1 << 30


def _integer(value: Any, key: str, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{key}: expected an integer >= {minimum}, got {value!r}")
    return value


def _dtype(value: Any, key: str, kinds: str) -> np.dtype:
    try:
        dtype = np.dtype(value) if isinstance(value, str) else None
    except TypeError:
        dtype = None
    if dtype is None or dtype.kind not in kinds:
        raise ValueError(f"{key}: expected a numeric dtype name such as 'float32', got {value!r}")
    return dtype


def _shape(value: Any, key: str, itemsize: int) -> tuple[int, ...]:
    if not isinstance(value, list):
        raise ValueError(f"{key}: expected a list of integers, got {value!r}")
    shape = tuple(_integer(side, f"{key}[{i}]") for i, side in enumerate(value))
    if math.prod(shape) * itemsize > MAX_TRANSITION_BYTES:
        raise ValueError(
            f"{key}: {list(shape)} asks for {math.prod(shape) * itemsize} bytes per transition "
            f"(at most {MAX_TRANSITION_BYTES})"
        )
    return shape


def space_from_json(description: Any, key: str = "space") -> spaces.Space:
    """Inverse of :func:`space_to_json`; a malformed description raises ValueError naming ``key``."""
    if not isinstance(description, dict):
        raise ValueError(f"{key}: expected a mapping with a 'type', got {description!r}")
    kind = description.get("type")
    try:
        if kind == "Box":
            dtype = _dtype(description.get("dtype"), f"{key}.dtype", "fiu")
            shape = _shape(description.get("shape"), f"{key}.shape", dtype.itemsize)
            low = _bounds_from_json(description.get("low"), shape, f"{key}.low").astype(dtype)
            high = _bounds_from_json(description.get("high"), shape, f"{key}.high").astype(dtype)
            return spaces.Box(low=low, high=high, shape=shape, dtype=dtype)
        if kind == "Discrete":
            n, start = _integer(description.get("n"), f"{key}.n", 1), description.get("start")
            if isinstance(start, bool) or not isinstance(start, int):
                raise ValueError(f"{key}.start: expected an integer, got {start!r}")
            return spaces.Discrete(n, start=start, dtype=_dtype(description.get("dtype"), f"{key}.dtype", "iu"))
        if kind == "MultiDiscrete":
            dtype = _dtype(description.get("dtype"), f"{key}.dtype", "iu")
            nvec = _shape(description.get("nvec"), f"{key}.nvec", dtype.itemsize)
            if not nvec or min(nvec) < 1:
                raise ValueError(f"{key}.nvec: expected positive integers, got {list(nvec)}")
            return spaces.MultiDiscrete(list(nvec), dtype=dtype)
        if kind == "MultiBinary":
            n_spec = description.get("n")
            sides = _shape(n_spec if isinstance(n_spec, list) else [n_spec], f"{key}.n", 1)
            if not sides or min(sides) < 1:
                raise ValueError(f"{key}.n: expected positive integers, got {n_spec!r}")
            return spaces.MultiBinary(list(sides) if isinstance(n_spec, list) else sides[0])
    except (TypeError, OverflowError, AssertionError) as error:  # gymnasium's own checks
        raise ValueError(f"{key}: not a valid {kind} space ({error})") from None
    raise ValueError(f"{key}.type: expected 'Box', 'Discrete', 'MultiDiscrete' or 'MultiBinary', got {kind!r}")


def _chunk_entries(chunks: Any) -> list[dict[str, Any]]:
    """Check the ``chunks`` list: relative file names inside the dataset folder, counts, hashes."""
    if not isinstance(chunks, list):
        raise ValueError(f"chunks: expected a list, got {type(chunks).__name__}")
    for index, entry in enumerate(chunks):
        key = f"chunks[{index}]"
        if not isinstance(entry, dict):
            raise ValueError(f"{key}: expected a mapping with file, n_transitions and sha256")
        file = entry.get("file")
        if not isinstance(file, str) or not file:
            raise ValueError(f"{key}.file: expected a relative file name, got {file!r}")
        relative = Path(file)
        if relative.is_absolute() or ".." in relative.parts or "\\" in file:
            raise ValueError(f"{key}.file: {file!r} is not inside the dataset folder")
        _integer(entry.get("n_transitions"), f"{key}.n_transitions")
        digest = entry.get("sha256")
        if not isinstance(digest, str) or len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise ValueError(f"{key}.sha256: expected 64 lowercase hex digits, got {digest!r}")
    return chunks


def write_manifest(path: Path, manifest: dict[str, Any]) -> None:
    """Write ``manifest`` to ``path`` atomically, as indented JSON."""
    atomic_write_text(path, json.dumps(manifest, indent=2) + "\n")


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
        manifest = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
        raise ValueError(f"{file}: not a readable JSON manifest ({error})") from None
    missing = [key for key in MANIFEST_KEYS if key not in manifest] if isinstance(manifest, dict) else MANIFEST_KEYS
    if missing:
        raise ValueError(f"{file}: manifest lacks {', '.join(missing)}")
    version = manifest["format_version"]
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ValueError(f"{file}: format_version: expected a positive integer, got {version!r}")
    if version > FORMAT_VERSION:
        raise ValueError(
            f"{file}: format_version {version!r} is newer than this sb3-ext reads ({FORMAT_VERSION}); "
            "upgrade sb3-ext to load it"
        )
    try:
        for key, minimum in (("n_transitions", 0), ("n_envs", 1), ("chunk_size", 1)):
            _integer(manifest[key], key, minimum)
        _chunk_entries(manifest["chunks"])
        for key in ("observation_space", "action_space"):
            manifest[key] = space_from_json(manifest[key], key)
    except ValueError as error:
        raise ValueError(f"{file}: {error}") from None
    counted = sum(chunk["n_transitions"] for chunk in manifest["chunks"])
    if counted != manifest["n_transitions"]:
        raise ValueError(
            f"{file}: chunks hold {counted} transitions but the manifest says n_transitions={manifest['n_transitions']}"
        )
    return manifest


def chunk_path(directory: Path, entry: dict[str, Any]) -> Path:
    """Where a checked chunk entry's file is; refuses one that a symbolic link takes outside ``directory``."""
    path = directory / entry["file"]
    if not path.resolve().is_relative_to(directory.resolve()):
        raise ValueError(f"{path}: chunk file is outside its dataset folder {directory}")
    return path
