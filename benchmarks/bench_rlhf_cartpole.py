"""RLHF reward relabelling on CartPole-v1: a rater that prefers the cart near the centre.

For each seed, one process trains the same algorithm three times with the same seed and budget:
without feedback (plain SB3), with ScriptedFeedback rating every transition by -|x|, and with
PreferenceFeedback asking the same rater to choose between pairs of 10-step segments (turned into a
reward by the Bradley–Terry model). It then reports the trained deterministic policy's mean |x| and
episode length.

    nice -n 10 python benchmarks/bench_rlhf_cartpole.py                 # PPO, 5 seeds, 40k steps
    nice -n 10 python benchmarks/bench_rlhf_cartpole.py --algo reinforce --steps 100000
    python benchmarks/bench_rlhf_cartpole.py --quick                    # 2 seeds, 30k steps
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.env_util import make_vec_env

from sb3_ext.reinforce import REINFORCE
from sb3_ext.rlhf import (
    PreferenceFeedback,
    RLHFConfig,
    ScriptedFeedback,
    preference_from_rater,
)
from sb3_ext.rlhf.relabel import RLHFRewardRelabel

ENV_ID = "CartPole-v1"


def centre_rater(obs: np.ndarray, action: np.ndarray, next_obs: np.ndarray) -> float:
    """The scripted rater: the closer the cart ends up to the centre, the better."""
    return -abs(float(next_obs[0]))


def make_model(algo: str, seed: int) -> BaseAlgorithm:
    """rl-zoo3's CartPole-v1 settings (constant instead of linear rates for PPO; ours for REINFORCE)."""
    env = make_vec_env(ENV_ID, n_envs=8, seed=seed)
    if algo == "ppo":
        return PPO("MlpPolicy", env, n_steps=32, batch_size=256, gae_lambda=0.8, gamma=0.98, n_epochs=20,
                   learning_rate=1e-3, seed=seed)
    return REINFORCE("MlpPolicy", env, n_steps=32, max_grad_norm=10.0, seed=seed)


def feedback_callbacks(seed: int, weight: float) -> dict[str, Callable[[], BaseCallback | None]]:
    """The three trainings compared: no feedback, scripted ratings, pairwise preferences."""
    return {
        "none": lambda: None,
        "scripted": lambda: RLHFRewardRelabel(
            RLHFConfig(feedback_weight=weight, sources=[ScriptedFeedback(centre_rater)])
        ),
        "preference": lambda: RLHFRewardRelabel(
            RLHFConfig(
                feedback_weight=weight,
                aggregation="bradley_terry",
                sources=[PreferenceFeedback(preference_from_rater(centre_rater), segment_length=10, seed=seed)],
                reward_model_kwargs=dict(seed=seed),
            )
        ),
    }


def cart_position_and_length(model: BaseAlgorithm, seed: int, n_episodes: int) -> tuple[float, float]:
    """Mean |x| over all steps and mean length of deterministic episodes."""
    env = make_vec_env(ENV_ID, n_envs=1, seed=seed)
    positions, lengths = [], []
    for _ in range(n_episodes):
        obs, length, done = env.reset(), 0, False
        while not done:
            positions.append(abs(float(obs[0, 0])))
            action, _ = model.predict(obs, deterministic=True)
            obs, _, dones, _ = env.step(action)
            done, length = bool(dones[0]), length + 1
        lengths.append(length)
    return float(np.mean(positions)), float(np.mean(lengths))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--algo", choices=("ppo", "reinforce"), default="ppo")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=40_000)
    parser.add_argument("--weight", type=float, default=0.5, help="feedback_weight")
    parser.add_argument("--eval-episodes", type=int, default=10)
    parser.add_argument("--quick", action="store_true", help="2 seeds, 30k steps")
    args = parser.parse_args()
    if args.quick:
        args.seeds, args.steps = 2, 30_000
    torch.set_num_threads(1)

    results: dict[str, list[tuple[float, float]]] = {}
    walls: dict[str, float] = {}
    for seed in range(args.seeds):
        for name, callback in feedback_callbacks(seed, args.weight).items():
            started = time.perf_counter()
            model = make_model(args.algo, seed)
            model.learn(args.steps, callback=callback())
            walls[name] = walls.get(name, 0.0) + time.perf_counter() - started
            outcome = cart_position_and_length(model, seed + 1000, args.eval_episodes)
            results.setdefault(name, []).append(outcome)
            print(f"  seed {seed} {name}: mean |x| {outcome[0]:.3f}, length {outcome[1]:.0f}", flush=True)

    plain = np.array([x for x, _ in results["none"]])
    print(f"\n{ENV_ID}, {args.algo.upper()}, {args.steps} steps, feedback_weight {args.weight}, {args.seeds} seeds, "
          f"{args.eval_episodes} deterministic episodes each")
    print("| feedback | mean abs x (per seed) | mean abs x | vs none | seeds with lower abs x | mean length | wall s |")
    print("|---|---|---|---|---|---|---|")
    for name, outcomes in results.items():
        xs = np.array([x for x, _ in outcomes])
        lengths = np.array([length for _, length in outcomes])
        lower = "-" if name == "none" else f"{int((xs < plain).sum())}/{len(xs)}"
        print(f"| {name} | {', '.join(f'{x:.2f}' for x in xs)} | {xs.mean():.3f} | {xs.mean() / plain.mean():.2f} "
              f"| {lower} | {lengths.mean():.0f} | {walls[name]:.0f} |")


if __name__ == "__main__":
    main()
