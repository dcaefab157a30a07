"""Save a model when training dies of an exception, and hold a run folder for one session.

SB3's callbacks are not told when ``learn()`` raises (``on_training_end`` does not run), so a
crash, a full disk or a folder turned read-only would lose everything since the last checkpoint.
:func:`save_on_exception` wraps any SB3 model's ``learn()``::

    with save_on_exception(model, "checkpoints/rescue.zip") as rescue:
        model.learn(100_000)
    # on an exception: the model was saved to rescue.path (or a fallback), then the error re-raised

:class:`RunLock` is an ``flock`` on ``<folder>/.lock``: the kernel releases it when the process
dies, however it dies, so a killed session never leaves a stale lock behind.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from sb3_ext.common.atomic import atomic_save_model

if TYPE_CHECKING:
    from stable_baselines3.common.base_class import BaseAlgorithm

log = logging.getLogger(__name__)


@dataclass
class Rescue:
    """Where :func:`save_on_exception` saved the model (``path`` None: nothing saved, or no error)."""

    candidates: list[Path]
    path: Path | None = None
    error: BaseException | None = None
    failures: list[str] = field(default_factory=list)


@contextlib.contextmanager
def save_on_exception(model: BaseAlgorithm, *paths: str | os.PathLike) -> Iterator[Rescue]:
    """On an ``Exception`` inside the block, save ``model`` to the first of ``paths`` that can be
    written (then to the system's temporary folder), log where, and re-raise the exception.

    ``KeyboardInterrupt`` and ``SystemExit`` are not caught: stopping on a signal is the job of
    a callback that lets ``learn()`` return normally.
    """
    rescue = Rescue([Path(p) for p in paths])
    try:
        yield rescue
    except Exception as error:
        rescue.error = error
        fallback = Path(tempfile.gettempdir()) / f"sb3_ext_rescue_{os.getpid()}.zip"
        for candidate in [*rescue.candidates, fallback]:
            try:
                rescue.path = atomic_save_model(model, candidate)
                break
            except OSError as save_error:
                rescue.failures.append(f"{candidate}: {save_error.strerror or save_error}")
        if rescue.path is not None:
            log.error("training failed at step %d (%s); model saved to %s", model.num_timesteps, error, rescue.path)
        else:
            log.error(
                "training failed at step %d (%s); the model could not be saved (%s)",
                model.num_timesteps,
                error,
                "; ".join(rescue.failures),
            )
        raise


class TrainingFailed(RuntimeError):
    """``learn()`` died of an exception; the message says where the model was saved and how to resume."""


class RunLockedError(ValueError):
    """Another live process holds the folder's lock."""


class RunLock:
    """An exclusive ``flock`` on ``<folder>/.lock``, held from :meth:`acquire` to :meth:`release`.

    :param folder: the folder to hold (it must exist).
    :param what: how the error message names the folder (e.g. "run").
    """

    NAME = ".lock"

    def __init__(self, folder: str | os.PathLike, what: str = "folder"):
        self.path = Path(folder) / self.NAME
        self.what = what
        self._fd: int | None = None

    def acquire(self) -> RunLock:
        """Take the lock, or raise :class:`RunLockedError` at once if another process has it."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise RunLockedError(
                f"{self.path.parent}: this {self.what} is in use by another session (its lock {self.path} is held); "
                "wait for it to finish or stop it first"
            ) from None
        self._fd = fd
        return self

    def release(self) -> None:
        """Release the lock (the file stays, empty, so that no two sessions race on creating it)."""
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc_info: object) -> None:
        self.release()
