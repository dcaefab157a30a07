"""Does seeding TD3's replay buffer with offline data pay? Online steps to reach -200 on Pendulum-v1.

1. Train an expert TD3 (rl-zoo3 settings, 20k steps) -- or load one with ``--expert``.
2. Record 20k transitions of it with ``SyntheticDatasetBuilder`` (a versioned chunk dataset).
3. For each seed, three TD3 runs with rl-zoo3's hyperparameters, evaluated every 1000 online
   steps (10 deterministic episodes) until the mean return reaches -200 or the budget ends:
   * ``zoo``      : unseeded, the zoo's learning_starts=10000 (random warm-up);
   * ``ls=100``   : unseeded, learning_starts=100 (control: only the warm-up differs from seeded);
   * ``seeded``   : learning_starts=100 and the 20k offline transitions loaded by ``OfflineSeed``.

    nice -n 10 python benchmarks/bench_offline_seeding.py            # 5 seeds
    nice -n 10 python benchmarks/bench_offline_seeding.py --quick    # 1 seed, small expert
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch as th
from bench_td3_pendulum import ENV_ID, zoo_td3_settings
from stable_baselines3 import TD3
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.monitor import Monitor

from sb3_ext.callbacks import OfflineSeed
from sb3_ext.data import SyntheticDatasetBuilder

THRESHOLD = -200.0


class StepsToReturn(BaseCallback):
    """Evaluate every ``eval_freq`` steps; stop training once the mean return reaches ``threshold``."""

    def __init__(self, seed: int, eval_freq: int = 1000, threshold: float = THRESHOLD) -> None:
        super().__init__()
        self.eval_env = Monitor(gym.make(ENV_ID))
        self.eval_env.reset(seed=10_000 + seed)
        self.eval_freq = eval_freq
        self.threshold = threshold
        self.reached_at: int | None = None
        self.last_return = float("nan")

    def _on_step(self) -> bool:
        if self.num_timesteps % self.eval_freq:
            return True
        self.last_return, _ = evaluate_policy(self.model, self.eval_env, n_eval_episodes=10, deterministic=True)
        if self.last_return >= self.threshold:
            self.reached_at = self.num_timesteps
            return False
        return True


def steps_to_threshold(seed: int, budget: int, learning_starts: int | None, dataset: Path | None) -> tuple:
    _, kwargs = zoo_td3_settings()
    if learning_starts is not None:
        kwargs["learning_starts"] = learning_starts
    model = TD3("MlpPolicy", ENV_ID, seed=seed, **kwargs)
    probe = StepsToReturn(seed)
    callbacks = [OfflineSeed(dataset), probe] if dataset is not None else [probe]
    model.learn(budget, callback=callbacks)
    return probe.reached_at, probe.last_return


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--budget", type=int, default=20_000, help="online steps per run at most")
    parser.add_argument("--expert", type=Path, default=None, help="a saved TD3 .zip to record instead of training one")
    parser.add_argument("--quick", action="store_true", help="1 seed, 12k-step expert, 12k budget")
    args = parser.parse_args()
    th.set_num_threads(1)
    seeds = range(1 if args.quick else args.seeds)
    budget = 12_000 if args.quick else args.budget

    with tempfile.TemporaryDirectory() as root:
        if args.expert is not None:
            expert = TD3.load(args.expert)
        else:
            n_timesteps, kwargs = zoo_td3_settings()
            expert = TD3("MlpPolicy", ENV_ID, seed=1000, **kwargs).learn(12_000 if args.quick else n_timesteps)
        expert_return, _ = evaluate_policy(expert, Monitor(gym.make(ENV_ID)), n_eval_episodes=10)
        dataset = SyntheticDatasetBuilder(ENV_ID, expert, n_transitions=20_000, version="pendulum-td3-expert",
                                          chunk_size=5_000, seed=2000, root=root).build()
        print(f"expert TD3 mean return {expert_return:.1f}; dataset: 20000 transitions in {dataset}")
        print(f"{'seed':>4} | {'zoo (ls=10000)':>16} | {'ls=100':>16} | {'seeded, ls=100':>16}   (online steps to >= -200)")
        reached: dict[str, list] = {"zoo": [], "ls=100": [], "seeded": []}
        for seed in seeds:
            row = {
                "zoo": steps_to_threshold(seed, budget, None, None),
                "ls=100": steps_to_threshold(seed, budget, 100, None),
                "seeded": steps_to_threshold(seed, budget, 100, dataset),
            }
            cells = []
            for name, (steps, last_return) in row.items():
                reached[name].append(steps)
                cells.append(f"{steps:>16}" if steps else f"{'no (' + format(last_return, '.0f') + ')':>16}")
            print(f"{seed:>4} | " + " | ".join(cells), flush=True)

    def summary(name: str) -> str:
        values = [steps if steps else budget for steps in reached[name]]
        hits = sum(steps is not None for steps in reached[name])
        return f"{name}: median {np.median(values):.0f} steps, reached on {hits}/{len(values)}"

    print("; ".join(summary(name) for name in reached) + f" (misses counted as the {budget}-step budget)")
    fewer = sum((s or budget + 1) < (z or budget + 1) for s, z in zip(reached["seeded"], reached["zoo"], strict=False))
    print(f"seeded reached -200 in fewer online steps than unseeded zoo TD3 on {fewer}/{len(seeds)} seeds")


if __name__ == "__main__":
    main()
