"""Deterministic evaluation of a policy on a stage's lattice, next to neutral physics (exact KMC)
and the hand rule "deposit in valleys, hop downhill" applied to the same agents.

Films are compared at equal thickness: the neutral policy runs the stage's episodes first, and
every other policy's episode stops as soon as its mean height reaches the neutral films' final
mean height (with up to twice the steps to get there), so that a policy cannot look smoother by
depositing less.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3.common.type_aliases import PolicyPredictor

from sb3_ext.curriculum.config import StageConfig
from sb3_ext.envs.lattice.heuristics import NeutralPolicy, ValleyDownhillPolicy

#: Gains of the hand rule tried on every evaluation; the best one at mean ESS >= 0.5 is reported.
HAND_RULE_GAINS: tuple[float, ...] = (0.125, 0.25, 0.5)
#: The ESS a policy must keep to count as a fair comparison.
MIN_ESS = 0.5


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
    predictor: PolicyPredictor,
    config: StageConfig,
    n_episodes: int,
    seed: int,
    env_id: str | None = None,
    stop_height: float | None = None,
    on_episode_end: Callable[[gym.Env], None] | None = None,
) -> EvaluationResult:
    """Run ``n_episodes`` deterministic episodes on a fresh environment seeded with ``seed``.

    Two predictors evaluated with the same seed start from the same random streams, which makes
    their figures directly comparable. ``stop_height`` ends each episode at that mean film height
    (allowing twice the stage's steps to reach it). ``on_episode_end(env)`` is called after each
    episode, before the next reset (to keep the final film, say).
    """
    kwargs = config.environment.env_kwargs()
    if stop_height is not None:
        kwargs.update(stop_height=min(stop_height, config.environment.lattice_size[2]), max_steps=2 * kwargs["max_steps"])
    env = gym.make(env_id or config.environment.env_id, **kwargs)
    returns, finals = [], []
    try:
        for episode in range(n_episodes):
            obs, _ = env.reset(seed=seed if episode == 0 else None)
            total, done = 0.0, False
            info: dict[str, Any] = {}
            while not done:
                action, _ = predictor.predict(obs, deterministic=True)
                obs, reward, terminated, truncated, info = env.step(action)
                total += float(reward)
                done = terminated or truncated
            returns.append(total)
            finals.append(info)
            if on_episode_end is not None:
                on_episode_end(env)
    finally:
        env.close()

    def mean(key: str) -> float | None:
        values = [info[key] for info in finals if key in info]
        return float(np.mean(values)) if values else None

    roughness = [info["final_roughness"] for info in finals if "final_roughness" in info]
    return EvaluationResult(
        episodes=n_episodes,
        mean_reward=float(np.mean(returns)),
        std_reward=float(np.std(returns)),
        final_roughness=mean("final_roughness"),
        final_roughness_std=float(np.std(roughness)) if roughness else None,
        final_coverage=mean("final_coverage"),
        mean_ess=mean("mean_ess"),
        mean_height=mean("mean_height"),
    )


def best_hand_rule(results: dict[str, EvaluationResult]) -> str:
    """The gain whose film is smoothest among those with mean ESS >= ``MIN_ESS`` (else the
    gain with the highest ESS)."""
    roughness = {
        gain: r.final_roughness
        for gain, r in results.items()
        if (r.mean_ess or 0.0) >= MIN_ESS and r.final_roughness is not None
    }
    if roughness:
        return min(roughness, key=roughness.__getitem__)
    return max(results, key=lambda gain: results[gain].mean_ess or 0.0)


def compare(
    predictor: PolicyPredictor, config: StageConfig, n_episodes: int, seed: int, env_id: str | None = None
) -> dict[str, Any]:
    """The policy, neutral physics and the hand rule (every gain of ``HAND_RULE_GAINS``) on the
    same seeds, at equal thickness. Returns plain dicts: ``policy``, ``neutral``, ``hand_rule``
    (the best gain's result, with its ``gain``) and ``hand_rule_gains``."""
    radius = config.environment.patch_radius
    neutral = evaluate(NeutralPolicy(radius), config, n_episodes, seed, env_id)
    height = neutral.mean_height
    policy = evaluate(predictor, config, n_episodes, seed, env_id, stop_height=height)
    hands = {
        str(gain): evaluate(ValleyDownhillPolicy(radius, gain, gain), config, n_episodes, seed, env_id, stop_height=height)
        for gain in HAND_RULE_GAINS
    }
    best = best_hand_rule(hands)
    return {
        "policy": policy.to_dict(),
        "neutral": neutral.to_dict(),
        "hand_rule": {**hands[best].to_dict(), "gain": float(best)},
        "hand_rule_gains": {gain: result.to_dict() for gain, result in hands.items()},
    }


def format_comparison(result: dict[str, Any]) -> str:
    """A table of ``compare``'s result: one row per policy, W relative to neutral physics."""
    neutral_w = result["neutral"]["final_roughness"]
    rows = [("policy", result["policy"]), ("neutral", result["neutral"])]
    rows += [(f"hand rule, gain {gain}", r) for gain, r in result["hand_rule_gains"].items()]
    lines = [f"{'':<22}{'W':>8}{'vs neutral':>12}{'mean ESS':>10}{'height':>8}{'coverage':>10}{'reward':>12}"]
    for name, r in rows:
        w = r["final_roughness"]
        change = "-" if w is None or not neutral_w else f"{100.0 * (w / neutral_w - 1.0):+.1f}%"
        cells = (w, r["mean_ess"], r["mean_height"], r["final_coverage"], r["mean_reward"])
        w_cell, ess, height, coverage, reward = ("-" if v is None else f"{v:.3f}" for v in cells)
        lines.append(f"{name:<22}{w_cell:>8}{change:>12}{ess:>10}{height:>8}{coverage:>10}{reward:>12}")
    lines.append(f"best hand rule at mean ESS >= {MIN_ESS}: gain {result['hand_rule']['gain']:g}")
    return "\n".join(lines)
