"""Episode-end ``info`` values of finished episodes, for any environment that reports them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


class FinalInfoCollector:
    """Gathers episode-end ``info`` values (and the Monitor's episode reward) per finished episode.

    Call :meth:`add` with a step's ``dones`` and ``infos``. It is also usable as the per-step
    ``callback`` of :func:`stable_baselines3.common.evaluation.evaluate_policy`.

    :param keys: info keys to collect (e.g. :data:`sb3_ext.curriculum.morphology.FINAL_INFO_KEYS`);
        a key an episode does not report is skipped for it. The reward is always collected.
    """

    def __init__(self, keys: Sequence[str] = ()):
        self.keys = tuple(keys)
        self.episodes: list[dict[str, float]] = []

    def add(self, dones: Sequence[bool], infos: Sequence[dict[str, Any]]) -> None:
        """Record every finished episode among ``infos``."""
        for done, info in zip(dones, infos, strict=False):
            if done:
                episode = {key: float(info[key]) for key in self.keys if key in info}
                if "episode" in info:  # added by stable_baselines3.common.monitor.Monitor
                    episode["reward"] = float(info["episode"]["r"])
                self.episodes.append(episode)

    def __call__(self, locals_: dict[str, Any], globals_: dict[str, Any]) -> None:
        # evaluate_policy calls this once per env per step with `done` and `info` of that env.
        self.add([locals_["done"]], [locals_["info"]])

    def mean(self, key: str) -> float | None:
        """Mean of ``key`` over the collected episodes that reported it (None if none did)."""
        values = [episode[key] for episode in self.episodes if key in episode]
        return float(np.mean(values)) if values else None

    def std(self, key: str) -> float | None:
        """Standard deviation of ``key`` over the collected episodes that reported it."""
        values = [episode[key] for episode in self.episodes if key in episode]
        return float(np.std(values)) if values else None

    def clear(self) -> None:
        """Forget the collected episodes."""
        self.episodes.clear()
