"""Combining the ratings that cover a transition into one feedback value."""

from __future__ import annotations

from collections import defaultdict
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
    values = np.zeros(len(episodes))
    counts = np.zeros(len(episodes), dtype=np.int64)
    wanted = set(np.unique(episodes).tolist())
    by_episode: dict[int, list[Rating]] = defaultdict(list)
    for rating in ratings:
        if rating.episode in wanted:
            by_episode[rating.episode].append(rating)

    for episode, episode_ratings in by_episode.items():
        index = np.flatnonzero(episodes == episode)
        episode_steps = steps[index]
        starts, ends, scores = (np.array(column) for column in zip(*[(r.start, r.end, r.score) for r in episode_ratings]))
        # covers[j, k]: rating j covers the k-th transition of this episode
        covers = (episode_steps[None, :] >= starts[:, None]) & (episode_steps[None, :] < ends[:, None])
        counts[index] = covers.sum(axis=0)
        rated = counts[index] > 0
        if method == "mean":
            values[index[rated]] = (covers * scores[:, None]).sum(axis=0)[rated] / counts[index[rated]]
        else:
            table = np.where(covers[:, rated], scores[:, None], np.nan)
            values[index[rated]] = np.nanmedian(table, axis=0)
    return values, counts
