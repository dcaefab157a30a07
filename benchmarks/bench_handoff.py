"""Does a PPO -> off-policy hand-over beat a cold start? Second-stage steps to a target return.

Stage 1 trains PPO (rl-zoo3's settings for the env) for a small budget. Its final policy records
a dataset (``sb3_ext.curriculum.handoff.record_handoff``). Stage 2 then runs, side by side per seed:

* ``cold (zoo)``  : the second algorithm from scratch with its zoo settings;
* ``cold (same)`` : from scratch with the settings the hand-over run uses (control: only the
  hand-over differs);
* ``distil only`` : the same settings, buffer seeded from the dataset and actor distilled from
  PPO (5 epochs) before the first step, no critic warm-up, no margin in training;
* ``warm-up only``: the same plus the critic warm-up (3000 gradient steps fitting the critic /
  Q-network to the recorded returns, actor held still), no margin in training;
* ``warm-up + margin``: the same plus, for a TwinDQN, DQfD's large-margin term on the recorded
  states in every gradient step of its own training (``training_margin_weight`` 1);
* ``warm-up + BC``: the same as ``warm-up only`` plus, for a DelayedTD3, TD3+BC's cloning term on
  the recorded states in every actor update (``training_bc_weight``: ``--bc-weight``, default 0.4,
  TD3+BC's alpha 2.5);
* ``warm-up + BC fading``: the same, the weight falling linearly to 0 over the first 2500 actor
  updates (5000 steps at TD3's policy delay 2);
* ``handoff``     : ``HandoffConfig``'s defaults.

``--set KEY=VALUE`` changes the second-stage settings of every variant but ``cold (zoo)``;
``--handoff-set KEY=VALUE`` changes ``HandoffConfig`` fields of every hand-over variant (e.g.
``transitions=2000``: the recording keeps that many), on top of the task's own: CartPole records
with ``recording_epsilon`` 0.3 (``--handoff-set recording_epsilon=0`` for the figures measured
before that was the task's setting).

Each run is evaluated every ``eval_freq`` steps (10 deterministic episodes) until its mean
return reaches the target or the budget ends (``--full-budget``: every run trains its whole
budget, to show what follows a hit, e.g. a dip after the hand-over). Tasks: Pendulum-v1 PPO ->
DelayedTD3 (target -200; DelayedTD3 trains exactly as SB3's TD3 and can carry the cloning term),
CartPole-v1 PPO -> TwinDQN (target 475).

    nice -n 10 python benchmarks/bench_handoff.py --seeds 3 --variants "cold (same)" "warm-up only" "warm-up + margin"
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch as th
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.noise import NormalActionNoise
from stable_baselines3.common.vec_env import VecEnv

from settings_args import parse_settings
from sb3_ext.curriculum.config import HandoffConfig
from sb3_ext.curriculum.handoff import hand_off, record_handoff
from sb3_ext.delayed_td3 import DelayedTD3
from sb3_ext.twin_dqn import TwinDQN


class StepsToReturn(BaseCallback):
    """Evaluate every ``eval_freq`` steps; stop once the mean return reaches ``target``."""

    def __init__(self, env_id: str, seed: int, target: float, eval_freq: int, stop: bool = True) -> None:
        super().__init__()
        self.stop = stop
        self.eval_env = Monitor(gym.make(env_id))
        self.eval_env.reset(seed=10_000 + seed)
        self.target, self.eval_freq = target, eval_freq
        self.reached_at: int | None = None
        self.curve: list[tuple[int, float]] = []

    def evaluate(self) -> bool:
        mean_return, _ = evaluate_policy(self.model, self.eval_env, n_eval_episodes=10, deterministic=True)
        self.curve.append((self.num_timesteps, float(mean_return)))
        if mean_return >= self.target and self.reached_at is None:
            self.reached_at = self.num_timesteps
        return self.reached_at is None or not self.stop

    def _on_training_start(self) -> None:
        self.evaluate()  # step 0: what the hand-over alone gives

    def _on_step(self) -> bool:
        if self.reached_at is not None and self.stop:  # reached at step 0: stop at the first step
            return False
        return self.num_timesteps % self.eval_freq != 0 or self.evaluate()


TASKS: dict[str, dict[str, Any]] = {
    "pendulum": {
        "env_id": "Pendulum-v1", "target": -200.0, "stage1_steps": 40_000, "budget": 15_000, "eval_freq": 1000,
        "ppo": {"n_envs": 4, "n_steps": 1024, "gae_lambda": 0.95, "gamma": 0.9, "n_epochs": 10, "ent_coef": 0.0,
                "learning_rate": 1e-3, "clip_range": 0.2, "use_sde": True, "sde_sample_freq": 4},
        "student": DelayedTD3,
        # rl-zoo3's td3.yml entry for Pendulum-v1; the hand-over settings start learning at once.
        "zoo": {"learning_starts": 10_000, "gamma": 0.98, "buffer_size": 200_000, "train_freq": 1, "gradient_steps": 1,
                "learning_rate": 1e-3, "policy_kwargs": {"net_arch": [400, 300]}},
        "same": {"learning_starts": 100},
        "noise": 0.1,
        "handoff": {},
    },
    "cartpole": {
        "env_id": "CartPole-v1", "target": 475.0, "stage1_steps": 25_000, "budget": 30_000, "eval_freq": 2000,
        "ppo": {"n_envs": 8, "n_steps": 32, "batch_size": 256, "gae_lambda": 0.8, "gamma": 0.98, "n_epochs": 20,
                "ent_coef": 0.0, "learning_rate": 1e-3, "clip_range": 0.2},
        "student": TwinDQN,
        # sb3_ext/hyperparams/twin_dqn.yml's CartPole-v1 entry; the hand-over settings explore less.
        "zoo": {"learning_rate": 2.3e-3, "batch_size": 64, "buffer_size": 100_000, "learning_starts": 1000, "gamma": 0.99,
                "target_update_interval": 10, "train_freq": 256, "gradient_steps": 128, "exploration_fraction": 0.16,
                "exploration_final_eps": 0.04, "policy_kwargs": {"net_arch": [256, 256]}},
        "same": {"learning_starts": 0, "exploration_initial_eps": 0.1},
        "noise": None,
        # A Q-learner ranks actions only from data that hold both with their outcomes; at 0 the
        # handed-over TwinDQN lost the teacher's ranking within 1000 steps (docs/trainer.md).
        "handoff": {"recording_epsilon": 0.3},
    },
}


def handoff_settings(task: dict[str, Any], overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The task's ``HandoffConfig`` fields for every hand-over variant (and the recording), ``--handoff-set``'s on top."""
    return {**task["handoff"], **(overrides or {})}


def train_teacher(task: dict[str, Any], seed: int) -> tuple[PPO, VecEnv]:
    """Stage 1 as every hand-over benchmark runs it: PPO on the task; returns it and its env."""
    ppo_kwargs = dict(task["ppo"])
    env = make_vec_env(task["env_id"], n_envs=ppo_kwargs.pop("n_envs"), seed=seed)
    return PPO("MlpPolicy", env, seed=seed, **ppo_kwargs).learn(task["stage1_steps"]), env


def record_teacher(task: dict[str, Any], teacher: PPO, env: VecEnv, dataset: Path, seed: int,
                   handoff_overrides: dict[str, Any]) -> None:
    """The teacher's recording in ``dataset``, as its ``HandoffConfig`` (the task's fields with
    ``--handoff-set``'s on top, ``handoff_settings``) asks."""
    recording = dataclasses.replace(HandoffConfig(), **handoff_overrides)
    record_handoff(teacher, env, dataset, recording.transitions, env_id=task["env_id"],
                   epsilon=recording.recording_epsilon, seed=seed)


def student_kwargs(task: dict[str, Any], variant: str, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    kwargs = {**task["zoo"], "policy_kwargs": dict(task["zoo"]["policy_kwargs"])}
    if variant != "cold (zoo)":
        kwargs.update(task["same"])
        kwargs.update(overrides or {})
    if task["noise"] is not None:
        n_actions = gym.make(task["env_id"]).action_space.shape[0]
        kwargs["action_noise"] = NormalActionNoise(np.zeros(n_actions), task["noise"] * np.ones(n_actions))
    return kwargs


VARIANTS = ("cold (zoo)", "cold (same)", "distil only", "warm-up only", "warm-up + margin", "warm-up + BC",
            "warm-up + BC fading", "handoff")
#: The hand-over each hand-over variant performs (None: a cold start).
HANDOFFS = {
    "distil only": HandoffConfig(critic_warmup_steps=0, training_margin_weight=0),
    "warm-up only": HandoffConfig(training_margin_weight=0),
    "warm-up + margin": HandoffConfig(training_margin_weight=1),
    "warm-up + BC": HandoffConfig(training_bc_weight=0.4),
    "warm-up + BC fading": HandoffConfig(training_bc_weight=0.4, training_bc_fade_updates=2500),
    "handoff": HandoffConfig(),
}


def run_task(name: str, seed: int, root: Path, variants: list[str], full_budget: bool = False,
             overrides: dict[str, Any] | None = None, handoff_overrides: dict[str, Any] | None = None,
             bc_weight: float = 0.4) -> dict[str, Any]:
    task = TASKS[name]
    handoff_overrides = handoff_settings(task, handoff_overrides)
    start = time.perf_counter()
    teacher, env = train_teacher(task, seed)
    teacher_return = evaluate_policy(teacher, Monitor(gym.make(task["env_id"])), n_eval_episodes=10)[0]
    dataset = root / f"{name}-{seed}"
    record_teacher(task, teacher, env, dataset, seed, handoff_overrides)
    result: dict[str, Any] = {"teacher_return": float(teacher_return), "stage1_wall_s": time.perf_counter() - start}
    for variant in variants:
        model = task["student"]("MlpPolicy", task["env_id"], seed=seed, **student_kwargs(task, variant, overrides))
        start = time.perf_counter()
        handoff = HANDOFFS.get(variant)
        if handoff is not None:
            if handoff.training_bc_weight > 0:
                handoff = dataclasses.replace(handoff, training_bc_weight=bc_weight)
            handoff = dataclasses.replace(handoff, **handoff_overrides)
        report = hand_off(model, teacher, dataset, handoff, seed=seed).to_dict() if handoff is not None else None
        handoff_s = time.perf_counter() - start
        probe = StepsToReturn(task["env_id"], seed, task["target"], task["eval_freq"], stop=not full_budget)
        start = time.perf_counter()
        model.learn(task["budget"], callback=probe)
        result[variant] = {"reached_at": probe.reached_at, "curve": probe.curve, "wall_s": time.perf_counter() - start,
                           "handoff_s": handoff_s, "handoff": report}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first-seed", type=int, default=0, help="seeds first-seed .. first-seed + seeds - 1")
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS))
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--json", type=Path, help="write every curve here")
    parser.add_argument("--full-budget", action="store_true", help="train every run for its whole budget")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="second-stage settings of every variant but cold (zoo), e.g. learning_rate=1e-4")
    parser.add_argument("--handoff-set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="HandoffConfig fields of every hand-over variant, e.g. transitions=2000")
    parser.add_argument("--bc-weight", type=float, default=0.4, help="training_bc_weight of the BC variants")
    args = parser.parse_args()
    overrides = parse_settings(parser, "--set", args.set)
    handoff_overrides = parse_settings(parser, "--handoff-set", args.handoff_set)
    th.set_num_threads(1)
    results: dict[str, dict[int, Any]] = {}
    with tempfile.TemporaryDirectory() as root:
        for name in args.tasks:
            task = TASKS[name]
            print(f"== {name}: PPO ({task['stage1_steps']} steps) -> {task['student'].__name__}, "
                  f"steps to mean return >= {task['target']} (budget {task['budget']})", flush=True)
            results[name] = {}
            for seed in range(args.first_seed, args.first_seed + args.seeds):
                row = results[name][seed] = run_task(name, seed, Path(root), args.variants, args.full_budget,
                                                     overrides, handoff_overrides, args.bc_weight)
                cells = [
                    f"{v}: {row[v]['reached_at']}" if row[v]["reached_at"] is not None
                    else f"{v}: no ({row[v]['curve'][-1][1]:.0f})"
                    for v in args.variants
                ]  # fmt: skip
                print(f"seed {seed}: PPO teacher {row['teacher_return']:.0f}; " + "; ".join(cells), flush=True)
                for variant in HANDOFFS.keys() & set(args.variants):
                    shown = row[variant]["curve"] if args.full_budget else row[variant]["curve"][:4]
                    curve = ", ".join(f"{ret:.0f}" for _, ret in shown)
                    print(f"   {variant}: returns at the evaluations {curve}; hand-over "
                          f"{row[variant]['handoff_s']:.1f} s; {json.dumps(row[variant]['handoff'])}", flush=True)
                if args.json:
                    args.json.write_text(json.dumps(results, indent=1))
            for variant in args.variants:
                reached = [row[variant]["reached_at"] for row in results[name].values()]
                steps = [task["budget"] if at is None else at for at in reached]  # 0 is a hit at step 0
                hits = sum(at is not None for at in reached)
                print(
                    f"   {variant}: median {np.median(steps):.0f} steps, reached on {hits}/{len(steps)} "
                    f"(misses counted as the budget)",
                    flush=True,
                )


if __name__ == "__main__":
    main()
