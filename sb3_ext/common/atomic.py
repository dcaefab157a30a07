"""The package's one way to write a file: a temporary file in the target's folder, then ``os.replace``.

A reader (or a run killed mid-write) therefore sees either the old file or the complete new one,
never a half-written file. The temporary file lives in the same folder so that ``os.replace`` is a
rename on one file system, which POSIX guarantees to be atomic. It is created with the usual
``0o666`` request, so the final file follows the umask like every other file of a run (``mkstemp``
would make it ``0o600``). A process killed mid-write leaves its ``.<name>.<pid>.<random>.tmp``
behind; :func:`remove_temporaries` clears them when the folder's owner starts again.

Also here: :func:`sha256_file`, the package's one file hash (manifests, dataset chunks).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, cast

if TYPE_CHECKING:  # importing SB3 (and torch) is not needed to write files
    from stable_baselines3.common.base_class import BaseAlgorithm

TEMPORARY_SUFFIX = ".tmp"


def is_temporary(path: Path) -> bool:
    """Whether ``path`` is named like a temporary file of :func:`atomic_open` (``.<name>.<...>.tmp``)."""
    return path.name.startswith(".") and path.name.endswith(TEMPORARY_SUFFIX)


def _temporary_name(target: Path) -> Path:
    return target.with_name(f".{target.name}.{os.getpid()}.{uuid.uuid4().hex[:12]}{TEMPORARY_SUFFIX}")


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", exclusive: bool = False) -> Iterator[IO]:
    """Open a temporary file next to ``path`` and move it onto ``path`` when the block succeeds.

    If the block raises, the temporary file is removed and ``path`` is left untouched.

    :param path: final location of the file (its folder is created if needed).
    :param mode: ``"w"`` for text (UTF-8) or ``"wb"`` for bytes.
    :param exclusive: never replace an existing ``path``: raise ``FileExistsError`` instead (the
        check and the move are one ``link`` call, so two writers cannot both succeed).
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open: mode must be 'w' or 'wb', got {mode!r}")
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = _temporary_name(target)
    try:
        handle: IO[Any] = open(temporary, "x", encoding="utf-8") if mode == "w" else open(temporary, "xb")
        with handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        if exclusive:
            os.link(temporary, target)  # fails if target exists; the temporary name is removed below
        else:
            os.replace(temporary, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)


def atomic_write_text(path: str | os.PathLike, text: str, exclusive: bool = False) -> None:
    """Write ``text`` to ``path`` atomically (see :func:`atomic_open` for ``exclusive``)."""
    with atomic_open(path, "w", exclusive=exclusive) as handle:
        handle.write(text)


def atomic_write_json(path: str | os.PathLike, data: Any, exclusive: bool = False) -> None:
    """Write ``data`` as indented JSON to ``path`` atomically."""
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=False) + "\n", exclusive=exclusive)


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


def remove_temporaries(directory: str | os.PathLike) -> list[Path]:
    """Delete the temporary files that killed writers left anywhere under ``directory``.

    Only call it on a folder no other process is writing to (e.g. while holding its run lock).

    :return: the files removed.
    """
    removed = []
    for path in sorted(Path(directory).rglob(f".*{TEMPORARY_SUFFIX}")):
        if path.is_file() and is_temporary(path):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                removed.append(path)
    return removed


def ensure_writable_folder(folder: str | os.PathLike) -> Path:
    """Create ``folder`` and write (then remove) a file in it.

    Called before a run starts, so that a folder that cannot be written fails at once with an
    ``OSError`` instead of after minutes of training, when the first checkpoint is due. The probe's
    name is unique to this call, so runs sharing a log folder (parallel zoo jobs) do not remove
    each other's probe.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    probe = folder / f".write_check.{os.getpid()}.{uuid.uuid4().hex}"
    atomic_write_text(probe, "")
    probe.unlink()
    return folder


def sha256_file(path: str | os.PathLike, block_size: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in blocks so that memory stays bounded."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(block_size):
            digest.update(block)
    return digest.hexdigest()
