"""Turn Ctrl-C and SIGTERM into a clean stop of ``learn()``."""

from __future__ import annotations

import logging
import signal
from collections.abc import Callable
from types import FrameType
from typing import Any

from stable_baselines3.common.callbacks import BaseCallback

log = logging.getLogger(__name__)

#: Conventional exit status of a process stopped by a signal: 128 + signal number.
EXIT_CODES = {signal.SIGINT: 130, signal.SIGTERM: 143}

#: What ``signal.signal`` accepts and returns as a handler.
Handler = Callable[[int, FrameType | None], Any] | int | signal.Handlers | None


class StopOnSignal(BaseCallback):
    """While installed, SIGINT/SIGTERM ask training to stop at the next environment step.

    ``learn()`` then returns normally, so every callback's ``on_training_end`` runs (latest.zip,
    metrics, curves) and the caller can save its resumable state. A second signal raises
    ``KeyboardInterrupt`` at once, for a user who does not want to wait. Use as a context manager
    around the training loop; handlers are restored on exit.
    """

    def __init__(self) -> None:
        super().__init__()
        self.received: signal.Signals | None = None
        self._previous: dict[signal.Signals, Handler] = {}

    def __enter__(self) -> StopOnSignal:
        for signum in EXIT_CODES:
            self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc_info: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.received is not None:
            raise KeyboardInterrupt
        self.received = signal.Signals(signum)
        log.warning(
            "%s received: stopping after the current step and saving latest.zip (send it again to abort)", self.received.name
        )

    @property
    def exit_code(self) -> int:
        """Exit status for the received signal (0 if none)."""
        return EXIT_CODES[self.received] if self.received is not None else 0

    def _on_step(self) -> bool:
        return self.received is None
