"""Feedback from Python functions: raters of transitions or segments, and choosers between segments."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from sb3_ext.rlhf.feedback import FeedbackSource, Preference, Rating, Segment
from sb3_ext.rlhf.log import TransitionLog

TransitionRater = Callable[[np.ndarray, np.ndarray, np.ndarray], float]
SegmentRater = Callable[[Segment], float]
Chooser = Callable[[Segment, Segment], float]


def _checked_score(value: float, what: str) -> float:
    score = float(value)
    if not math.isfinite(score):
        raise ValueError(f"{what}: expected a finite score, got {value!r}")
    return score


class ScriptedFeedback(FeedbackSource):
    """Ratings from a function, for experiments and tests.

    With ``segment_length=None`` the rater is called once per transition as
    ``rater(obs, action, next_obs) -> score``. With a ``segment_length``, it is called once per
    segment as ``rater(segment) -> score``, on consecutive ``segment_length``-step pieces of each
    episode (the last piece of an episode may be shorter), once the piece is complete.

    :param rater: the scoring function
    :param segment_length: None for per-transition ratings, else the length of rated segments
    """

    gives_ratings = True

    def __init__(self, rater: TransitionRater | SegmentRater, segment_length: int | None = None):
        super().__init__()
        if segment_length is not None and segment_length < 1:
            raise ValueError(f"segment_length: expected None or a positive integer, got {segment_length}")
        # Which of the two signatures it has depends on segment_length.
        self.rater: Callable[..., float] = rater
        self.segment_length = segment_length
        self._rated_until = 0  # log positions before this one have been rated

    def update(self, log: TransitionLog) -> None:
        if self.segment_length is not None:
            log.check_fits(self.segment_length, "ScriptedFeedback segment_length")
        self.forget_ratings_outside(log)
        first = max(self._rated_until, log.oldest)
        for position in range(first, log.total):
            slot = position % log.capacity
            for env in range(log.n_envs):
                self._rate(log, slot, env)
        self._rated_until = log.total

    def _rate(self, log: TransitionLog, slot: int, env: int) -> None:
        episode, step = int(log.episodes[slot, env]), int(log.steps[slot, env])
        if self.segment_length is None:
            score = self.rater(log.observations[slot, env], log.actions[slot, env], log.next_observations[slot, env])
            self.ratings.append(Rating(episode, step, step + 1, _checked_score(score, "ScriptedFeedback rater")))
            return
        # A segment is complete at its last step, or earlier when the episode ends there.
        if (step + 1) % self.segment_length == 0 or log.dones[slot, env]:
            segment = log.segment(episode, step - step % self.segment_length, step + 1)
            if segment is not None:
                score = _checked_score(self.rater(segment), "ScriptedFeedback rater")
                self.ratings.append(Rating(episode, segment.start, segment.end, score))


def preference_from_rater(rater: TransitionRater) -> Chooser:
    """A chooser that prefers the segment whose transitions ``rater`` scores higher in total (0.5 on a tie)."""

    def total(segment: Segment) -> float:
        return sum(
            float(rater(obs, action, next_obs))
            for obs, action, next_obs in zip(segment.observations, segment.actions, segment.next_observations, strict=False)
        )

    def choose(first: Segment, second: Segment) -> float:
        difference = total(first) - total(second)
        return 0.5 if difference == 0 else float(difference > 0)

    return choose


class PreferenceFeedback(FeedbackSource):
    """Pairwise preferences between recent segments, asked of a chooser (a person's stand-in).

    Every ``query_interval`` environment steps it draws ``pairs_per_query`` pairs of
    ``segment_length``-step segments from the recent transitions and records
    ``chooser(first, second)``, the probability that ``first`` is better. The relabelling callback
    (``aggregation='bradley_terry'``) fits a Bradley–Terry reward model on these preferences and
    relabels with its reward.

    :param chooser: ``chooser(first, second) -> p`` in [0, 1]; see :func:`preference_from_rater`
    :param segment_length: steps per compared segment
    :param pairs_per_query: pairs asked at each query
    :param query_interval: environment steps (summed over envs) between queries
    :param max_preferences: only the newest preferences are kept
    :param seed: seed of the segment draws
    """

    gives_preferences = True

    def __init__(
        self,
        chooser: Chooser,
        segment_length: int = 25,
        pairs_per_query: int = 8,
        query_interval: int = 1000,
        max_preferences: int = 1000,
        seed: int | None = None,
    ):
        super().__init__()
        for name, value in (
            ("segment_length", segment_length),
            ("pairs_per_query", pairs_per_query),
            ("query_interval", query_interval),
            ("max_preferences", max_preferences),
        ):
            if value < 1:
                raise ValueError(f"{name}: expected a positive integer, got {value}")
        self.chooser = chooser
        self.segment_length = segment_length
        self.pairs_per_query = pairs_per_query
        self.query_interval = query_interval
        self.max_preferences = max_preferences
        self._rng = np.random.default_rng(seed)
        self._next_query = 0  # environment steps

    def update(self, log: TransitionLog) -> None:
        log.check_fits(self.segment_length, "PreferenceFeedback segment_length")
        steps = log.total * log.n_envs
        if steps < self._next_query:
            return
        self._next_query = steps + self.query_interval
        for _ in range(self.pairs_per_query):
            first = log.sample_segment(self._rng, self.segment_length)
            second = log.sample_segment(self._rng, self.segment_length)
            if first is None or second is None:
                continue
            prob_first = float(self.chooser(first, second))
            if not 0.0 <= prob_first <= 1.0:
                raise ValueError(
                    f"PreferenceFeedback chooser: expected the probability that the first segment is better, "
                    f"in [0, 1], got {prob_first!r}"
                )
            self.preferences.append(Preference(first, second, prob_first))
        del self.preferences[: -self.max_preferences]
