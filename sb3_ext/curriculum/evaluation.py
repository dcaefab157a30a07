"""Deterministic evaluation of a policy on a stage's lattice, next to the neutral (exact KMC) policy."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.type_aliases import PolicyPredictor

from sb3_ext.common.episode_info import FinalInfoCollector
from sb3_ext.curriculum.config import StageConfig
from sb3_ext.curriculum.envs import ENV_ID, make_eval_env
from sb3_ext.curriculum.morphology import FINAL_INFO_KEYS


@dataclass(frozen=True)
class EvaluationResult:
    """Means over the evaluation episodes (None where the env did not report the quantity)."""

    episodes: int
    mean_reward: float
    std_reward: float
    final_roughness: float | None
    final_roughness_std: float | None
    final_coverage: float | None
    mean_ess: float | None
    mean_height: float | None

    def to_dict(self) -> dict[str, float | int | None]:
        """Plain dict for JSON."""
        return asdict(self)


def evaluate(
    predictor: PolicyPredictor, config: StageConfig, n_episodes: int, seed: int, env_id: str = ENV_ID
) -> EvaluationResult:
    """Run ``n_episodes`` deterministic episodes on a fresh environment seeded with ``seed``.

    Two predictors evaluated with the same seed start from the same random streams, which makes
    their figures directly comparable.
    """
    env = make_eval_env(config, seed, env_id)
    collector = FinalInfoCollector(FINAL_INFO_KEYS)
    try:
        rewards, _ = evaluate_policy(
            predictor, env, n_eval_episodes=n_episodes, deterministic=True, return_episode_rewards=True, callback=collector
        )
    finally:
        env.close()
    return EvaluationResult(
        episodes=n_episodes,
        mean_reward=float(np.mean(rewards)),
        std_reward=float(np.std(rewards)),
        final_roughness=collector.mean("final_roughness"),
        final_roughness_std=collector.std("final_roughness"),
        final_coverage=collector.mean("final_coverage"),
        mean_ess=collector.mean("mean_ess"),
        mean_height=collector.mean("mean_height"),
    )
