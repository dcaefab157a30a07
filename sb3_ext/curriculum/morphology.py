"""Film-morphology statistics of LatticeGrowth-v0's finished episodes, logged during training."""

from __future__ import annotations

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback

from sb3_ext.common.episode_info import FinalInfoCollector

#: Episode-end ``info`` keys of LatticeGrowth-v0 that the curriculum reports.
FINAL_INFO_KEYS: tuple[str, ...] = ("final_roughness", "final_coverage", "mean_ess", "mean_height")


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
        self.collector = FinalInfoCollector(FINAL_INFO_KEYS)

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
