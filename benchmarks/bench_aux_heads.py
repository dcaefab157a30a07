"""Do AuxPPO's heads with offline chunks speed up PPO? Live steps to a mean return of 475 on CartPole-v1.

Side by side per seed, same PPO settings (rl-zoo3's CartPole-v1 entry, constant rates):

* ``PPO``               : SB3's PPO (the chunks ignored);
* ``AuxPPO, chunks``    : AuxPPO with ``offline_data`` = 5000 transitions of a scripted balancer
  (prior fitted, actor warm-started, KL pull and offline values fading over 50k steps);
* ``AuxPPO, no chunks`` : AuxPPO without offline data: "no worse". Its dynamics head then learns
  on the actor's features without shaping them, so it trains exactly as PPO (a test checks it bit
  for bit); the run shows it end to end.

The heads draw their initial weights from a forked random stream, so for one seed every variant's
actor and critic start from the same weights and see the same env seeds: the seeds are paired.
Evaluated every 2048 live steps (10 deterministic episodes) until the mean return reaches 475 or
the budget ends (a run that never reaches it counts as the budget). "No worse" is tested on the
paired per-seed differences (variant - PPO): their median and a two-sided Wilcoxon signed-rank test.

    nice -n 10 python benchmarks/bench_aux_heads.py --seeds 6
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch as th
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.monitor import Monitor
from scipy.stats import wilcoxon

from sb3_ext.aux_heads import AuxPPO
from sb3_ext.data import ChunkWriter

TARGET, EVAL_FREQ = 475.0, 2048
SETTINGS = {"n_steps": 32, "batch_size": 256, "gae_lambda": 0.8, "gamma": 0.98, "n_epochs": 20, "ent_coef": 0.0,
            "learning_rate": 1e-3, "clip_range": 0.2}


def balancer(observations: np.ndarray) -> np.ndarray:
    """A scripted CartPole policy that keeps the pole up for the full 500 steps."""
    return (observations[:, 2] + 0.5 * observations[:, 3] > 0).astype(np.int64)


class StepsToReturn(BaseCallback):
    """Evaluate every ``EVAL_FREQ`` live steps; stop once the mean return reaches ``TARGET``."""

    def __init__(self, seed: int) -> None:
        super().__init__()
        self.eval_env = Monitor(gym.make("CartPole-v1"))
        self.eval_env.reset(seed=10_000 + seed)
        self.reached_at: int | None = None
        self.last = float("nan")
        self._next = EVAL_FREQ

    def _on_step(self) -> bool:
        if self.num_timesteps < self._next:
            return True
        self._next += EVAL_FREQ
        self.last = evaluate_policy(self.model, self.eval_env, n_eval_episodes=10)[0]
        if self.last >= TARGET:
            self.reached_at = self.num_timesteps
            return False
        return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--budget", type=int, default=40_000)
    args = parser.parse_args()
    th.set_num_threads(1)
    variants = ("PPO", "AuxPPO, chunks", "AuxPPO, no chunks")
    reached: dict[str, list] = {name: [] for name in variants}
    with tempfile.TemporaryDirectory() as root:
        chunks = Path(root) / "cartpole-balancer"
        env = make_vec_env("CartPole-v1", n_envs=2, seed=12345)
        with ChunkWriter(chunks, env.observation_space, env.action_space, n_envs=2, env_id="CartPole-v1") as writer:
            writer.record(env, balancer, 5000)
        print(f"live steps to mean return >= {TARGET} (budget {args.budget}; chunks: 5000 balancer transitions)", flush=True)
        for seed in range(args.seeds):
            cells = []
            for name in variants:
                env = make_vec_env("CartPole-v1", n_envs=8, seed=seed)
                if name == "PPO":
                    model = PPO("MlpPolicy", env, seed=seed, **SETTINGS)
                else:
                    offline = chunks if name == "AuxPPO, chunks" else None
                    model = AuxPPO("MlpPolicy", env, seed=seed, offline_data=offline, **SETTINGS)
                probe = StepsToReturn(seed)
                model.learn(args.budget, callback=probe)
                reached[name].append(probe.reached_at)
                cells.append(f"{name}: {probe.reached_at if probe.reached_at else 'no (' + format(probe.last, '.0f') + ')'}")
            print(f"seed {seed}: " + "; ".join(cells), flush=True)
    baseline = np.array([s or args.budget for s in reached["PPO"]])
    for name in variants:
        steps = np.array([s or args.budget for s in reached[name]])
        line = (f"{name}: median {np.median(steps):.0f} live steps (quartiles {np.percentile(steps, 25):.0f}-"
                f"{np.percentile(steps, 75):.0f}, min {steps.min()}, max {steps.max()}), "
                f"reached on {sum(s is not None for s in reached[name])}/{len(steps)}")
        if name != "PPO":
            difference = steps - baseline
            test = wilcoxon(difference) if np.any(difference) else None
            line += (f"; minus PPO per seed: median {np.median(difference):+.0f}, faster on {np.sum(difference < 0)}, "
                     f"slower on {np.sum(difference > 0)}, Wilcoxon p = {test.pvalue if test else 1.0:.2f}")
        print(line)


if __name__ == "__main__":
    main()
