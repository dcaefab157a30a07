"""DelayedTD3 vs SB3 TD3 on Pendulum-v1 with rl-zoo3's TD3 hyperparameters, side by side.

For each seed both algorithms train in this process, one after the other (DelayedTD3 first for
even seeds, TD3 first for odd ones), with the settings of
rl-zoo3's installed ``hyperparams/td3.yml``; each is then evaluated (10 deterministic episodes).
Throughput is timesteps per second of ``learn()``, in wall time and in process CPU time (the
latter is the fairer ratio on a shared machine). The run passes when DelayedTD3's mean return
beats -200 on at least 4 of 5 seeds and its throughput is at least 0.9x TD3's.

    nice -n 10 python benchmarks/bench_td3_pendulum.py            # 5 seeds x 20k steps
    nice -n 10 python benchmarks/bench_td3_pendulum.py --quick    # 2 seeds x 12k steps, a smoke test
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import gymnasium as gym
import numpy as np
import torch as th
from sb3_ext.delayed_td3 import DelayedTD3
from sb3_ext.zoo.config import read_zoo_entry, rl_zoo3_hyperparams_file
from stable_baselines3 import TD3
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.monitor import Monitor

ENV_ID = "Pendulum-v1"


def zoo_td3_settings(env_id: str = ENV_ID) -> tuple[int, dict[str, Any]]:
    """(n_timesteps, constructor kwargs) from rl-zoo3's own td3.yml, its noise built as the zoo does."""
    entry = read_zoo_entry("td3", env_id, rl_zoo3_hyperparams_file("td3"))
    assert entry.n_timesteps is not None, f"{entry.conf_file}: {env_id} has no n_timesteps"
    return entry.n_timesteps, entry.model_kwargs


def run(algo: type[TD3], seed: int, n_timesteps: int, kwargs: dict[str, Any]) -> dict[str, float]:
    model = algo("MlpPolicy", ENV_ID, seed=seed, **kwargs)
    wall, cpu = time.perf_counter(), time.process_time()
    model.learn(n_timesteps)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    eval_env = Monitor(gym.make(ENV_ID))
    eval_env.reset(seed=10_000 + seed)
    mean_return, _ = evaluate_policy(model, eval_env, n_eval_episodes=10, deterministic=True)
    return {"return": mean_return, "wall_fps": n_timesteps / wall, "cpu_fps": n_timesteps / cpu}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=5, help="number of seeds")
    parser.add_argument("--first-seed", type=int, default=0, help="seeds are first-seed .. first-seed + seeds - 1")
    parser.add_argument("--steps", type=int, default=None, help="timesteps per run (default: the zoo's n_timesteps)")
    parser.add_argument("--quick", action="store_true", help="2 seeds x 12k steps")
    args = parser.parse_args()
    th.set_num_threads(1)

    n_timesteps, _ = zoo_td3_settings()
    seeds = range(args.first_seed, args.first_seed + (2 if args.quick else args.seeds))
    steps = 12_000 if args.quick else (args.steps or n_timesteps)
    print(f"{ENV_ID}, rl-zoo3 TD3 hyperparameters, {steps} steps, seeds {list(seeds)}")
    print(f"{'seed':>4} | {'TD3 return':>10} {'fps':>6} | {'DelayedTD3 return':>17} {'fps':>6} | "
          f"{'wall ratio':>10} {'cpu ratio':>9}")
    results: dict[str, list[dict[str, float]]] = {"TD3": [], "DelayedTD3": []}
    for seed in seeds:
        # Fresh kwargs per run: the noise object is stateful and SB3 edits policy_kwargs in place.
        # The order alternates with the seed, so that a drift in machine load favours neither.
        order = (DelayedTD3, TD3) if seed % 2 == 0 else (TD3, DelayedTD3)
        runs = {algo: run(algo, seed, steps, zoo_td3_settings()[1]) for algo in order}
        ours, theirs = runs[DelayedTD3], runs[TD3]
        results["DelayedTD3"].append(ours)
        results["TD3"].append(theirs)
        print(f"{seed:>4} | {theirs['return']:>10.1f} {theirs['wall_fps']:>6.0f} | {ours['return']:>17.1f} "
              f"{ours['wall_fps']:>6.0f} | {ours['wall_fps'] / theirs['wall_fps']:>10.2f} "
              f"{ours['cpu_fps'] / theirs['cpu_fps']:>9.2f}", flush=True)

    def total(name: str, key: str) -> float:
        return float(np.mean([r[key] for r in results[name]]))

    solved = sum(r["return"] > -200 for r in results["DelayedTD3"])
    solved_td3 = sum(r["return"] > -200 for r in results["TD3"])
    # Ratio of summed run times, i.e. of harmonic-mean throughputs.
    wall_ratio = sum(1 / r["wall_fps"] for r in results["TD3"]) / sum(1 / r["wall_fps"] for r in results["DelayedTD3"])
    cpu_ratio = sum(1 / r["cpu_fps"] for r in results["TD3"]) / sum(1 / r["cpu_fps"] for r in results["DelayedTD3"])
    print(f"mean return: TD3 {total('TD3', 'return'):.1f} ({solved_td3}/{len(seeds)} seeds > -200), "
          f"DelayedTD3 {total('DelayedTD3', 'return'):.1f} ({solved}/{len(seeds)} seeds > -200)")
    print(f"throughput DelayedTD3 / TD3: wall {wall_ratio:.3f}x, cpu {cpu_ratio:.3f}x")
    if not args.quick:
        verdict = solved >= 4 * len(seeds) / 5 and cpu_ratio >= 0.9
        print("PASS" if verdict else "FAIL", "(> -200 on >= 4/5 seeds, cpu throughput >= 0.9x TD3)")


if __name__ == "__main__":
    main()
