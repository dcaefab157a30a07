"""Combining the ratings that cover a transition into one feedback value."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from sb3_ext.rlhf.feedback import Rating

#: 'mean' and 'median' combine ratings; 'bradley_terry' fits a reward model on preferences instead.
AGGREGATIONS = ("mean", "median", "bradley_terry")


def aggregate_ratings(
    ratings: Iterable[Rating], episodes: np.ndarray, steps: np.ndarray, method: str
) -> tuple[np.ndarray, np.ndarray]:
    """Per transition ``(episodes[i], steps[i])``: the mean or median score of the ratings covering it.

    :return: ``(values, counts)``; ``counts[i]`` ratings cover transition ``i`` (value 0 where none).
    """
    if method not in ("mean", "median"):
        raise ValueError(f"method: expected 'mean' or 'median', got {method!r}")
    n_transitions = len(episodes)
    values = np.zeros(n_transitions)
    table = np.array([(r.episode, r.start, r.end, r.score) for r in ratings], dtype=np.float64).reshape(-1, 4)
    table = table[np.isin(table[:, 0], episodes)]
    if n_transitions == 0 or len(table) == 0:
        return values, np.zeros(n_transitions, dtype=np.int64)

    # Each transition is the key episode * stride + step; a rating covers the keys of its steps
    # (clipped to the steps present, so a huge "end" costs nothing).
    stride = int(steps.max()) + 1
    keys = episodes.astype(np.int64) * stride + steps
    starts = table[:, 1].astype(np.int64)
    lengths = np.clip(np.minimum(table[:, 2], stride).astype(np.int64) - starts, 0, None)
    rating_of = np.repeat(np.arange(len(table)), lengths)
    offset = np.arange(len(rating_of)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    covered_keys = table[rating_of, 0].astype(np.int64) * stride + starts[rating_of] + offset

    order = np.argsort(keys)
    found = np.minimum(np.searchsorted(keys[order], covered_keys), n_transitions - 1)
    hit = keys[order][found] == covered_keys
    transition, scores = order[found[hit]], table[rating_of[hit], 3]
    counts = np.bincount(transition, minlength=n_transitions)
    rated = counts > 0
    if method == "mean":
        values[rated] = np.bincount(transition, weights=scores, minlength=n_transitions)[rated] / counts[rated]
    else:
        by_transition = np.lexsort((scores, transition))
        sorted_scores = scores[by_transition]
        first = np.searchsorted(transition[by_transition], np.flatnonzero(rated))
        middle_low = first + (counts[rated] - 1) // 2
        middle_high = first + counts[rated] // 2
        values[rated] = (sorted_scores[middle_low] + sorted_scores[middle_high]) / 2
    return values, counts
