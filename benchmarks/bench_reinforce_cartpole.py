"""REINFORCE (each baseline option) beside SB3's A2C on CartPole-v1, in one process.

Every run trains with its rl-zoo3 hyperparameters (ours from hyperparams/reinforce.yml, A2C's from
rl-zoo3's own a2c.yml), evaluates the deterministic policy every --eval-freq steps, and stops at the
first evaluation whose mean return reaches --target (so "steps to 475" is that evaluation's step).

    nice -n 10 python benchmarks/bench_reinforce_cartpole.py            # 5 seeds, 200k steps
    python benchmarks/bench_reinforce_cartpole.py --quick               # 2 seeds, 50k steps
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from typing import Any

import torch
from sb3_ext.reinforce import REINFORCE
from sb3_ext.zoo.config import read_zoo_entry
from stable_baselines3 import A2C
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy

ENV_ID = "CartPole-v1"


def zoo_hyperparams(algo: str) -> tuple[int, dict[str, Any]]:
    """(n_envs, constructor kwargs) of the CartPole-v1 entry the zoo uses for ``algo``."""
    entry = read_zoo_entry(algo, ENV_ID)
    return entry.n_envs, entry.model_kwargs


def steps_to_target(
    algo: type[BaseAlgorithm], kwargs: dict[str, Any], n_envs: int, seed: int, args: argparse.Namespace
) -> tuple[int | None, float]:
    """Train until the deterministic evaluation reaches the target; (steps or None, last eval)."""
    env = make_vec_env(ENV_ID, n_envs=n_envs, seed=seed)
    eval_env = make_vec_env(ENV_ID, n_envs=1, seed=seed + 10_000)
    model = algo("MlpPolicy", env, seed=seed, **kwargs)
    score = 0.0
    while model.num_timesteps < args.budget:
        model.learn(args.eval_freq, reset_num_timesteps=False)
        score, _ = evaluate_policy(model, eval_env, n_eval_episodes=args.eval_episodes, deterministic=True)
        if score >= args.target:
            return model.num_timesteps, score
    return None, score


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--budget", type=int, default=200_000, help="environment steps per run")
    parser.add_argument("--eval-freq", type=int, default=10_000)
    parser.add_argument("--eval-episodes", type=int, default=10)
    parser.add_argument("--target", type=float, default=475.0)
    parser.add_argument("--quick", action="store_true", help="2 seeds, 50k steps")
    args = parser.parse_args()
    if args.quick:
        args.seeds, args.budget = 2, 50_000
    torch.set_num_threads(1)

    ours_envs, ours = zoo_hyperparams("reinforce")  # sb3_ext/hyperparams/reinforce.yml
    a2c_envs, a2c = zoo_hyperparams("a2c")  # rl-zoo3's own a2c.yml
    runs = [(f"REINFORCE baseline={b!r}", REINFORCE, {**ours, "baseline": b}, ours_envs) for b in ("value", "mean", None)]
    runs.append(("A2C (rl-zoo3)", A2C, a2c, a2c_envs))

    print(f"{ENV_ID}: steps until the deterministic eval ({args.eval_episodes} episodes) reaches {args.target:g}; "
          f"budget {args.budget}, eval every {args.eval_freq}, {args.seeds} seeds")
    rows = []
    for name, algo, kwargs, n_envs in runs:
        started = time.perf_counter()
        hits = [steps_to_target(algo, kwargs, n_envs, seed, args)[0] for seed in range(args.seeds)]
        reached = [h for h in hits if h is not None]
        # A run that never reached the target counts as infinitely slow.
        median = statistics.median([math.inf if h is None else h for h in hits])
        rows.append((name, hits, reached, median, time.perf_counter() - started))
        print(f"  {name}: {hits}", flush=True)

    a2c_median = rows[-1][3]
    print(f"\n| run | reached {args.target:g} | median steps to {args.target:g} | vs A2C | per seed | wall s |")
    print("|---|---|---|---|---|---|")
    for name, hits, reached, median, wall in rows:
        ratio = f"{median / a2c_median:.2f}" if math.isfinite(median) and math.isfinite(a2c_median) else "-"
        per_seed = ", ".join("-" if h is None else f"{h // 1000}k" for h in hits)
        median_text = f"{median:,.0f}" if math.isfinite(median) else f"> {args.budget:,}"
        print(f"| {name} | {len(reached)}/{len(hits)} | {median_text} | {ratio} | {per_seed} | {wall:.0f} |")


if __name__ == "__main__":
    main()
