"""TwinDQN and QuantileDQN beside SB3's DQN and sb3-contrib's QRDQN on CartPole-v1, in one process.

Every run uses rl-zoo3's DQN hyperparameters for CartPole-v1 (read from the installed rl_zoo3's
hyperparams/dqn.yml) with the same seeds and budget; the two quantile methods also share
n_quantiles. A callback evaluates the deterministic policy every --eval-freq steps inside one
learn() call (so the exploration schedule is the one the zoo settings define) to find the first step
at which the evaluation mean reaches 475, and the final policy is evaluated on --final-episodes
episodes. Throughput is environment steps per second of CPU time spent in learn(), evaluation
excluded; the runs of one seed are interleaved so that machine load hits every algorithm alike.

    nice -n 10 python benchmarks/bench_value_cartpole.py             # 5 seeds, 50k steps
    nice -n 10 python benchmarks/bench_value_cartpole.py --quick     # 2 seeds, 20k steps
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from typing import Any

import rl_zoo3
import torch
import yaml
from sb3_contrib import QRDQN
from stable_baselines3 import DQN
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.vec_env import VecEnv

from sb3_ext.quantile_dqn import QuantileDQN
from sb3_ext.twin_dqn import TwinDQN

ENV_ID = "CartPole-v1"
ALGOS: dict[str, type[BaseAlgorithm]] = {"DQN": DQN, "TwinDQN": TwinDQN, "QRDQN": QRDQN, "QuantileDQN": QuantileDQN}
# Each of ours is compared with the algorithm it extends.
BASELINE = {"TwinDQN": "DQN", "QuantileDQN": "QRDQN"}
QUANTILE_ALGOS = ("QRDQN", "QuantileDQN")


def zoo_dqn_hyperparams() -> dict[str, Any]:
    """Constructor kwargs of the CartPole-v1 entry of rl-zoo3's dqn.yml."""
    path = Path(rl_zoo3.__file__).parent / "hyperparams" / "dqn.yml"
    entry = dict(yaml.safe_load(path.read_text())[ENV_ID])
    for key in ("n_timesteps", "policy", "n_envs"):
        entry.pop(key, None)
    if isinstance(entry.get("policy_kwargs"), str):
        # rl-zoo3 writes policy_kwargs as a Python expression such as "dict(net_arch=[256, 256])".
        entry["policy_kwargs"] = eval(entry["policy_kwargs"], {"__builtins__": {}, "dict": dict})  # noqa: S307
    return entry


class PeriodicEval(BaseCallback):
    """Evaluates the deterministic policy every ``eval_freq`` steps; records its own CPU time."""

    def __init__(self, eval_env: VecEnv, eval_freq: int, n_episodes: int, target: float) -> None:
        super().__init__()
        self.eval_env = eval_env
        self.eval_freq = eval_freq
        self.n_episodes = n_episodes
        self.target = target
        self.first_step_at_target: int | None = None
        self.eval_seconds = 0.0

    def _on_step(self) -> bool:
        if self.first_step_at_target is None and self.num_timesteps % self.eval_freq == 0:
            start = time.process_time()
            mean, _ = evaluate_policy(self.model, self.eval_env, n_eval_episodes=self.n_episodes, deterministic=True)
            self.eval_seconds += time.process_time() - start
            if mean >= self.target:
                self.first_step_at_target = self.num_timesteps
        return True


def run(name: str, kwargs: dict[str, Any], seed: int, args: argparse.Namespace) -> dict[str, Any]:
    """Train one algorithm on one seed; final eval, first step at target, CPU seconds in training."""
    env = make_vec_env(ENV_ID, n_envs=1, seed=seed)
    model = ALGOS[name]("MlpPolicy", env, seed=seed, **kwargs)
    callback = PeriodicEval(make_vec_env(ENV_ID, n_envs=1, seed=seed + 1000), args.eval_freq, args.eval_episodes, 475)
    start = time.process_time()
    model.learn(args.steps, callback=callback)
    train_seconds = time.process_time() - start - callback.eval_seconds
    final_env = make_vec_env(ENV_ID, n_envs=1, seed=seed + 2000)
    final, _ = evaluate_policy(model, final_env, n_eval_episodes=args.final_episodes, deterministic=True)
    return {"final": float(final), "first": callback.first_step_at_target, "seconds": train_seconds}


def mean_std(values: list[float]) -> str:
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.1f} ± {spread:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=5, help="number of seeds (0, 1, ...)")
    parser.add_argument("--steps", type=int, default=50_000, help="environment steps per run")
    parser.add_argument("--eval-freq", type=int, default=2_500)
    parser.add_argument("--eval-episodes", type=int, default=5, help="episodes per periodic evaluation")
    parser.add_argument("--final-episodes", type=int, default=20, help="episodes of the final evaluation")
    parser.add_argument("--n-quantiles", type=int, default=25, help="for QRDQN and QuantileDQN alike")
    parser.add_argument("--algos", nargs="+", choices=list(ALGOS), default=list(ALGOS))
    parser.add_argument("--quick", action="store_true", help="2 seeds, 20k steps")
    args = parser.parse_args()
    if args.quick:
        args.seeds, args.steps = 2, 20_000
    torch.set_num_threads(1)

    zoo = zoo_dqn_hyperparams()
    settings = {}
    for name in args.algos:
        kwargs = {**zoo, "policy_kwargs": dict(zoo.get("policy_kwargs", {}))}
        if name in QUANTILE_ALGOS:
            kwargs["policy_kwargs"]["n_quantiles"] = args.n_quantiles
        settings[name] = kwargs
    print(f"{ENV_ID}, rl-zoo3 DQN hyperparameters {zoo}; {args.steps} steps, seeds 0..{args.seeds - 1}; "
          f"n_quantiles={args.n_quantiles} for {', '.join(QUANTILE_ALGOS)}")

    results: dict[str, list[dict[str, Any]]] = {name: [] for name in args.algos}
    for seed in range(args.seeds):
        for name in args.algos:
            result = run(name, settings[name], seed, args)
            results[name].append(result)
            print(f"  seed {seed} {name:12s} final {result['final']:6.1f}  first >= 475 at {result['first']}  "
                  f"{args.steps / result['seconds']:6.0f} steps/s", flush=True)

    print(f"\n| algorithm | final eval ({args.final_episodes} ep.) mean ± std over seeds | seeds >= 475 "
          "| steps to first reach 475 (periodic eval) | steps/s (CPU) | throughput ratio |")
    print("|---|---|---|---|---|---|")
    speed = {name: args.steps * len(rows) / sum(r["seconds"] for r in rows) for name, rows in results.items()}
    for name, rows in results.items():
        finals = [r["final"] for r in rows]
        firsts = [str(r["first"]) if r["first"] is not None else "never" for r in rows]
        baseline = BASELINE.get(name)
        ratio = f"{speed[name] / speed[baseline]:.2f}x {baseline}" if baseline in speed else "1 (reference)"
        print(f"| {name} | {mean_std(finals)} | {sum(f >= 475 for f in finals)}/{len(finals)} "
              f"| {', '.join(firsts)} | {speed[name]:.0f} | {ratio} |")


if __name__ == "__main__":
    main()
