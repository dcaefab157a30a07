"""Feedback from a JSONL file that a person can append to while training runs."""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any

from sb3_ext.rlhf.feedback import FeedbackSource, Preference, Rating
from sb3_ext.rlhf.log import TransitionLog

_CHOICES = {"first": 1.0, "second": 0.0, "equal": 0.5}
#: Largest accepted |score|. Ratings are rewards for the reward model to fit; a score like 1e300
#: would overflow its loss and, through the relabelled rewards, turn the policy's outputs into NaN.
MAX_ABS_SCORE = 1e6


class _BadLine(ValueError):
    """A line that is not a valid rating or preference."""


def _span(record: Any, where: str) -> tuple[int, int, int]:
    if not isinstance(record, dict):
        raise _BadLine(f"{where}: expected an object with episode, start and end")
    values = []
    for key in ("episode", "start", "end"):
        value = record.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise _BadLine(f"{where}{key}: expected a non-negative integer, got {value!r}")
        values.append(value)
    episode, start, end = values
    if end <= start:
        raise _BadLine(f"{where}end: expected end > start, got start={start}, end={end}")
    return episode, start, end


def _parse(line: str) -> tuple[int, int, int, float] | tuple[tuple[int, int, int], tuple[int, int, int], float]:
    """A rating ``(episode, start, end, score)`` or a preference ``(first, second, prob_first)``."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError as error:
        raise _BadLine(f"not JSON ({error.msg})") from None
    except (RecursionError, ValueError):  # nesting too deep; an integer with too many digits
        raise _BadLine("not JSON this reader accepts (nested too deeply, or a number too long)") from None
    if not isinstance(record, dict):
        raise _BadLine("expected a JSON object")
    if "preferred" in record:
        choice = record["preferred"]
        if not isinstance(choice, str) or choice not in _CHOICES:
            raise _BadLine(f"preferred: expected 'first', 'second' or 'equal', got {choice!r}")
        return _span(record.get("first"), "first."), _span(record.get("second"), "second."), _CHOICES[choice]
    score = record.get("score")
    if not isinstance(score, (int, float)) or isinstance(score, bool) or not abs(score) <= MAX_ABS_SCORE:
        shown = score if not isinstance(score, int) or abs(score) < 10**20 else f"an integer of {len(str(abs(score)))} digits"
        raise _BadLine(f"score: expected a number between -{MAX_ABS_SCORE:g} and {MAX_ABS_SCORE:g}, got {shown!r}")
    return (*_span(record, ""), float(score))


class FileFeedback(FeedbackSource):
    """Ratings and preferences read from a JSONL file, re-read whenever the file changes.

    One JSON object per line, about episodes as numbered by the relabelling callback
    (steps ``start .. end - 1``, counted from 0 within the episode)::

        {"episode": 12, "start": 0, "end": 50, "score": -1.0}
        {"first": {"episode": 12, "start": 0, "end": 25},
         "second": {"episode": 14, "start": 0, "end": 25}, "preferred": "first"}

    ``preferred`` is ``"first"``, ``"second"`` or ``"equal"``. Appended lines are read from where
    the last read stopped (a last line without its newline waits until it is finished); a file
    that was replaced or truncated is read again from the top. A malformed line is skipped with a
    warning naming the file and line; so is a preference about steps no longer (or not yet) in the
    recent transitions, whose observations the reward model would need.

    :param path: the JSONL file; it may not exist yet
    """

    gives_ratings = True
    gives_preferences = True

    def __init__(self, path: str | os.PathLike):
        super().__init__()
        self.path = Path(path)
        self._signature: tuple[int, int, int] | None = None  # inode, size, mtime of the last read
        self._offset = 0  # bytes consumed
        self._line_number = 0  # lines consumed
        self._warned_missing = False
        # What each line gave, by (line number, text): a rewritten file keeps the segments of
        # preferences that have since left the log, and does not warn about the same line twice.
        self._known: dict[tuple[int, str], Rating | Preference | None] = {}

    def update(self, log: TransitionLog) -> None:
        self.forget_ratings_outside(log)
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            if not self._warned_missing:
                warnings.warn(f"{self.path}: feedback file does not exist (yet); no feedback read from it", stacklevel=2)
                self._warned_missing = True
            return
        signature = (stat.st_ino, stat.st_size, stat.st_mtime_ns)
        if signature == self._signature:
            return
        appended = self._signature is not None and stat.st_ino == self._signature[0] and stat.st_size >= self._offset
        if not appended:
            self._offset, self._line_number = 0, 0
            self.ratings, self.preferences = [], []
        self._signature = signature
        with self.path.open("rb") as file:
            file.seek(self._offset)
            data = file.read()
        complete = data[: data.rfind(b"\n") + 1]  # an unfinished last line is left for later
        self._offset += len(complete)
        for raw_line in complete.decode("utf-8", errors="replace").splitlines():
            self._line_number += 1
            if raw_line.strip():
                self._take(raw_line.strip(), log)

    def _take(self, line: str, log: TransitionLog) -> None:
        key = (self._line_number, line)
        if key not in self._known:
            self._known[key] = self._read_line(line, log)
        item = self._known[key]
        if isinstance(item, Preference):
            self.preferences.append(item)
        elif isinstance(item, Rating) and log.has_episode(item.episode):
            self.ratings.append(item)

    def _read_line(self, line: str, log: TransitionLog) -> Rating | Preference | None:
        """The line's feedback, or None (with a warning) if it cannot be used."""
        where = f"{self.path}:{self._line_number}"
        try:
            item = _parse(line)
        except _BadLine as error:
            warnings.warn(f"{where}: skipped malformed feedback line: {error}", stacklevel=4)
            return None
        if len(item) == 4:
            rating = Rating(*item)
            if not log.has_episode(rating.episode):
                warnings.warn(
                    f"{where}: skipped rating: episode {rating.episode} is not among the recent transitions", stacklevel=4
                )
                return None
            return rating
        first_span, second_span, prob_first = item
        first, second = log.segment(*first_span), log.segment(*second_span)
        if first is None or second is None:
            warnings.warn(f"{where}: skipped preference: its segments are not among the recent transitions", stacklevel=4)
            return None
        return Preference(first, second, prob_first)
