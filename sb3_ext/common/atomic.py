"""Atomic file writes: write to a temporary file in the target's folder, then ``os.replace``.

A reader (or a run killed mid-write) therefore sees either the old file or the complete new one,
never a half-written file. The temporary file lives in the same folder so that ``os.replace`` is a
rename on one file system, which POSIX guarantees to be atomic.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, cast

if TYPE_CHECKING:  # importing SB3 (and torch) is not needed to write files
    from stable_baselines3.common.base_class import BaseAlgorithm


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w") -> Iterator[IO]:
    """Open a temporary file next to ``path`` and move it onto ``path`` when the block succeeds.

    If the block raises, the temporary file is removed and ``path`` is left untouched.

    :param path: final location of the file.
    :param mode: ``"w"`` for text or ``"wb"`` for bytes.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open: mode must be 'w' or 'wb', got {mode!r}")
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        handle: IO[Any] = os.fdopen(fd, "w", encoding="utf-8") if mode == "w" else os.fdopen(fd, "wb")
        with handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_open(path, "w") as handle:
        handle.write(text)


def atomic_write_json(path: str | os.PathLike, data: Any) -> None:
    """Write ``data`` as indented JSON to ``path`` atomically."""
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


def atomic_save_model(model: BaseAlgorithm, path: str | os.PathLike) -> Path:
    """``model.save`` into a temporary file, then rename it onto ``path`` (which must end in .zip).

    SB3's ``save`` accepts an open binary file, which keeps its own ``.zip`` suffix handling out of
    the way of the temporary name.
    """
    target = Path(path)
    if target.suffix != ".zip":
        raise ValueError(f"atomic_save_model: path must end in .zip, got {str(target)!r}")
    with atomic_open(target, "wb") as handle:
        model.save(cast(io.BufferedIOBase, handle))  # mode "wb" opens a BufferedWriter
    return target
