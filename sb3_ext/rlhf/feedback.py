"""What feedback is: segment ratings and pairwise preferences, and the interface of their sources."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import numpy as np

if TYPE_CHECKING:
    from sb3_ext.rlhf.log import TransitionLog


@dataclass(frozen=True)
class Segment:
    """Consecutive transitions ``start .. start + len - 1`` of one episode, as the rater sees them.

    Episodes are numbered by the relabelling callback in the order they begin (see
    :class:`~sb3_ext.rlhf.log.TransitionLog`); steps count from 0 within an episode.
    """

    episode: int
    start: int
    observations: np.ndarray
    actions: np.ndarray
    next_observations: np.ndarray

    def __len__(self) -> int:
        return len(self.observations)

    @property
    def end(self) -> int:
        """One past the last step."""
        return self.start + len(self)


@dataclass(frozen=True)
class Rating:
    """A score for steps ``start .. end - 1`` of an episode (one step for a per-transition rating)."""

    episode: int
    start: int
    end: int
    score: float


@dataclass(frozen=True)
class Preference:
    """``prob_first``: probability that ``first`` is the better segment (1, 0, or 0.5 for a tie)."""

    first: Segment
    second: Segment
    prob_first: float


class FeedbackSource(ABC):
    """A source of feedback on recent transitions.

    The relabelling callback calls :meth:`update` at the end of every rollout with the log of
    recent transitions; the source then holds in ``ratings`` and ``preferences`` all the feedback
    it currently stands by (a source may drop or replace items, e.g. when its file is rewritten).
    """

    #: which kinds of feedback the source can give; RLHFConfig checks them against the aggregation
    gives_ratings: ClassVar[bool] = False
    gives_preferences: ClassVar[bool] = False

    def __init__(self) -> None:
        self.ratings: list[Rating] = []
        self.preferences: list[Preference] = []
        self._pruned_at = -1  # log.episodes_forgotten at the last pruning

    @abstractmethod
    def update(self, log: TransitionLog) -> None:
        """Take in new feedback about the transitions in ``log``."""

    def forget_ratings_outside(self, log: TransitionLog) -> None:
        """Drop ratings of episodes that have left the log: they can no longer relabel anything."""
        if log.episodes_forgotten != self._pruned_at:  # nothing left the log: nothing to drop
            self.ratings = [rating for rating in self.ratings if log.has_episode(rating.episode)]
            self._pruned_at = log.episodes_forgotten
