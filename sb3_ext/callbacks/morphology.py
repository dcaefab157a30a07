"""Film-morphology statistics of finished episodes, logged during training and evaluation."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback

#: Episode-end ``info`` keys of LatticeGrowth-v0 that the curriculum reports.
FINAL_INFO_KEYS: tuple[str, ...] = ("final_roughness", "final_coverage", "mean_ess", "mean_height")


class FinalInfoCollector:
    """Gathers episode-end ``info`` values (and the Monitor's episode reward) per finished episode.

    Call :meth:`add` with a step's ``dones`` and ``infos``. It is also usable as the per-step
    ``callback`` of :func:`stable_baselines3.common.evaluation.evaluate_policy`.

    :param keys: info keys to collect; a key an episode does not report is skipped for it.
    """

    def __init__(self, keys: Sequence[str] = FINAL_INFO_KEYS):
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


class MorphologyLogger(BaseCallback):
    """Log the morphology of the episodes that finished during each rollout.

    Records, at the end of every rollout in which at least one episode finished:
    ``morphology/roughness_mean`` and ``morphology/coverage_mean`` (means of the episodes' final
    roughness W and coverage), ``morphology/roughness_coverage_ratio`` (mean of W / coverage over
    episodes with coverage > 0), ``morphology/mean_height`` when the env reports it, and
    ``episode/reward`` (mean episode return; needs the envs wrapped in SB3's ``Monitor``, which
    ``make_vec_env`` and rl-zoo3 do).

    :param verbose: unused beyond SB3's convention.
    """

    def __init__(self, verbose: int = 0):
        super().__init__(verbose=verbose)
        self.collector = FinalInfoCollector()

    def _on_step(self) -> bool:
        self.collector.add(self.locals["dones"], self.locals["infos"])
        return True

    def _on_rollout_end(self) -> None:
        episodes = self.collector.episodes
        if not episodes:
            return
        if not any("final_roughness" in episode for episode in episodes):
            raise ValueError(
                "MorphologyLogger: finished episodes carry no 'final_roughness' info "
                "(use it with LatticeGrowth-v0 or an environment that reports it)"
            )
        for name, key in (
            ("roughness_mean", "final_roughness"),
            ("coverage_mean", "final_coverage"),
            ("mean_height", "mean_height"),
        ):
            value = self.collector.mean(key)
            if value is not None:
                self.logger.record(f"morphology/{name}", value)
        ratios = [
            episode["final_roughness"] / episode["final_coverage"]
            for episode in episodes
            if episode.get("final_coverage", 0.0) > 0.0 and "final_roughness" in episode
        ]
        if ratios:
            self.logger.record("morphology/roughness_coverage_ratio", float(np.mean(ratios)))
        reward = self.collector.mean("reward")
        if reward is not None:
            self.logger.record("episode/reward", reward)
        self.collector.clear()
