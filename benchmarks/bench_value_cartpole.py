"""TwinDQN and QuantileDQN beside SB3's DQN and sb3-contrib's QRDQN on CartPole-v1, in one process.

Every model uses rl-zoo3's DQN hyperparameters for CartPole-v1 (read from the installed rl_zoo3's
hyperparams/dqn.yml); the two quantile methods also share n_quantiles.

Learning: every algorithm trains on the same seeds and budget. A callback evaluates the
deterministic policy every --eval-freq steps inside one learn() call (so the exploration schedule is
the one the zoo settings define) to find the first step at which the evaluation mean reaches 475,
and keeps the best evaluation's weights (as rl-zoo3's EvalCallback keeps best_model.zip). The final
policy and that best checkpoint are then each evaluated afresh on --final-episodes episodes.

Throughput (measured first, as it is short): environment steps per second of CPU time in learn(),
once the replay buffer has passed learning_starts. The models take turns, --chunk steps each, for --rounds rounds,
and the median chunk is reported, so that load from other jobs on a shared machine hits every algorithm alike.
Ablation rows (one critic; one critic without double Q) show what the twin heads and double Q cost.

    nice -n 10 python benchmarks/bench_value_cartpole.py             # 5 seeds, 50k steps
    nice -n 10 python benchmarks/bench_value_cartpole.py --quick     # 2 seeds, 20k steps, 8 rounds
    nice -n 10 python benchmarks/bench_value_cartpole.py --seeds 0   # throughput only
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from typing import Any

import torch
from sb3_contrib import QRDQN
from sb3_ext.quantile_dqn import QuantileDQN
from sb3_ext.twin_dqn import TwinDQN
from sb3_ext.zoo.config import read_zoo_entry, rl_zoo3_hyperparams_file
from stable_baselines3 import DQN
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.vec_env import VecEnv

ENV_ID = "CartPole-v1"
ALGOS: dict[str, type[BaseAlgorithm]] = {"DQN": DQN, "TwinDQN": TwinDQN, "QRDQN": QRDQN, "QuantileDQN": QuantileDQN}
# Each of ours is compared with the algorithm it extends.
BASELINE = {"TwinDQN": "DQN", "QuantileDQN": "QRDQN"}
QUANTILE_ALGOS = ("QRDQN", "QuantileDQN")


def zoo_dqn_hyperparams() -> dict[str, Any]:
    """Constructor kwargs of the CartPole-v1 entry of rl-zoo3's dqn.yml."""
    return read_zoo_entry("dqn", ENV_ID, rl_zoo3_hyperparams_file("dqn")).model_kwargs


class PeriodicEval(BaseCallback):
    """
    Evaluates the deterministic policy every ``eval_freq`` steps: records the first step at which the
    mean reaches ``target`` and keeps the weights of the best evaluation, as rl-zoo3's EvalCallback
    keeps ``best_model.zip``.
    """

    def __init__(self, eval_env: VecEnv, eval_freq: int, n_episodes: int, target: float) -> None:
        super().__init__()
        self.eval_env = eval_env
        self.eval_freq = eval_freq
        self.n_episodes = n_episodes
        self.target = target
        self.first_step_at_target: int | None = None
        self.best_mean = -float("inf")
        self.best_weights: dict[str, torch.Tensor] | None = None

    def _on_step(self) -> bool:
        if self.num_timesteps % self.eval_freq == 0:
            mean, _ = evaluate_policy(self.model, self.eval_env, n_eval_episodes=self.n_episodes, deterministic=True)
            if mean >= self.target and self.first_step_at_target is None:
                self.first_step_at_target = self.num_timesteps
            if mean > self.best_mean:
                self.best_mean = mean
                self.best_weights = copy.deepcopy(self.model.policy.state_dict())
        return True


def make_model(algo: str, zoo: dict[str, Any], n_quantiles: int, seed: int, **options: Any) -> BaseAlgorithm:
    """``algo`` with the zoo settings (a fresh copy: algorithms may add to their policy_kwargs)."""
    kwargs = copy.deepcopy(zoo)
    policy_kwargs = kwargs.setdefault("policy_kwargs", {})
    if algo in QUANTILE_ALGOS:
        policy_kwargs["n_quantiles"] = n_quantiles
    for key in ("n_critics", "share_trunk"):
        if key in options:
            policy_kwargs[key] = options.pop(key)
    return ALGOS[algo]("MlpPolicy", make_vec_env(ENV_ID, n_envs=1, seed=seed), seed=seed, **kwargs, **options)


def learning_run(model: BaseAlgorithm, seed: int, args: argparse.Namespace) -> dict[str, Any]:
    """
    Train one model. Returns the first step at which the periodic evaluation reached 475, and fresh
    ``--final-episodes`` evaluations of the final policy and of the best periodic checkpoint.
    """
    callback = PeriodicEval(make_vec_env(ENV_ID, n_envs=1, seed=seed + 1000), args.eval_freq, args.eval_episodes, 475)
    model.learn(args.steps, callback=callback)
    final_env = make_vec_env(ENV_ID, n_envs=1, seed=seed + 2000)
    final, _ = evaluate_policy(model, final_env, n_eval_episodes=args.final_episodes, deterministic=True)
    model.policy.load_state_dict(callback.best_weights)
    best_env = make_vec_env(ENV_ID, n_envs=1, seed=seed + 2000)
    best, _ = evaluate_policy(model, best_env, n_eval_episodes=args.final_episodes, deterministic=True)
    return {"final": float(final), "best": float(best), "first": callback.first_step_at_target}


def throughput(models: dict[str, BaseAlgorithm], args: argparse.Namespace) -> dict[str, float]:
    """Median steps per CPU second of ``learn(chunk)``, the models taking turns."""
    for model in models.values():
        model.learn(model.learning_starts + args.chunk)  # fill the buffer past learning_starts
    seconds: dict[str, list[float]] = {name: [] for name in models}
    for _ in range(args.rounds):
        for name, model in models.items():
            start = time.process_time()
            model.learn(args.chunk, reset_num_timesteps=False)
            seconds[name].append(time.process_time() - start)
    return {name: args.chunk / statistics.median(values) for name, values in seconds.items()}


def mean_std(values: list[float]) -> str:
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.1f} ± {spread:.1f}"


def print_learning_table(results: dict[str, list[dict[str, Any]]], final_episodes: int) -> None:
    n_seeds = len(next(iter(results.values())))
    print(f"\nAfter {n_seeds} seed(s):\n")
    print(
        f"| algorithm | final policy ({final_episodes} episodes), mean ± std over seeds | seeds with final >= 475 "
        f"| best checkpoint ({final_episodes} episodes), mean ± std | seeds with best >= 475 "
        "| seeds that reached 475 (periodic eval) | steps to first reach 475, per seed |"
    )
    print("|---|---|---|---|---|---|---|")
    for name, rows in results.items():
        finals = [r["final"] for r in rows]
        bests = [r["best"] for r in rows]
        firsts = [r["first"] for r in rows]
        print(
            f"| {name} | {mean_std(finals)} | {sum(f >= 475 for f in finals)}/{len(rows)} "
            f"| {mean_std(bests)} | {sum(b >= 475 for b in bests)}/{len(rows)} "
            f"| {sum(f is not None for f in firsts)}/{len(rows)} | {', '.join(str(f) if f else 'never' for f in firsts)} |",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=5, help="number of seeds (0, 1, ...); 0: throughput only")
    parser.add_argument("--steps", type=int, default=50_000, help="environment steps per run")
    parser.add_argument("--eval-freq", type=int, default=2_500)
    parser.add_argument("--eval-episodes", type=int, default=5, help="episodes per periodic evaluation")
    parser.add_argument("--final-episodes", type=int, default=20, help="episodes of the final evaluation")
    parser.add_argument("--n-quantiles", type=int, default=25, help="for QRDQN and QuantileDQN alike")
    parser.add_argument("--algos", nargs="+", choices=list(ALGOS), default=list(ALGOS))
    parser.add_argument("--rounds", type=int, default=20, help="throughput: turns per model")
    parser.add_argument("--chunk", type=int, default=512, help="throughput: steps per turn (2 x train_freq)")
    parser.add_argument("--quick", action="store_true", help="2 seeds, 20k steps, 8 rounds")
    args = parser.parse_args()
    if args.quick:
        args.seeds, args.steps, args.rounds = 2, 20_000, 8
    torch.set_num_threads(1)
    zoo = zoo_dqn_hyperparams()
    print(f"{ENV_ID}, rl-zoo3 DQN hyperparameters {zoo}; n_quantiles={args.n_quantiles} for {', '.join(QUANTILE_ALGOS)}")

    print(f"\nThroughput: median of {args.rounds} turns of learn({args.chunk}) per model, CPU time, one torch thread")
    variants = {name: (name, {}) for name in args.algos}
    for ours in ("TwinDQN", "QuantileDQN"):
        if ours in args.algos:
            variants[f"{ours}, n_critics=1"] = (ours, dict(n_critics=1))
            variants[f"{ours}, n_critics=1, double_q=False"] = (ours, dict(n_critics=1, double_q=False))
    models = {
        label: make_model(algo, zoo, args.n_quantiles, 0, **dict(options)) for label, (algo, options) in variants.items()
    }
    speed = throughput(models, args)
    print("\n| model | steps/s (CPU) | ratio to the algorithm it extends |")
    print("|---|---|---|")
    for label, (algo, _) in variants.items():
        baseline = BASELINE.get(algo)
        ratio = f"{speed[label] / speed[baseline]:.2f}x {baseline}" if baseline in speed else "reference"
        print(f"| {label} | {speed[label]:.0f} | {ratio} |", flush=True)

    if args.seeds > 0:
        print(f"\nLearning: {args.steps} steps, seeds 0..{args.seeds - 1}")
        results: dict[str, list[dict[str, Any]]] = {name: [] for name in args.algos}
        for seed in range(args.seeds):
            for name in args.algos:
                result = learning_run(make_model(name, zoo, args.n_quantiles, seed), seed, args)
                results[name].append(result)
                print(
                    f"  seed {seed} {name:12s} final {result['final']:6.1f}  best checkpoint {result['best']:6.1f}  "
                    f"first >= 475 at {result['first']}",
                    flush=True,
                )
            # A table after every seed: a run stopped early still leaves the summary of the seeds it finished.
            print_learning_table(results, args.final_episodes)


if __name__ == "__main__":
    main()
