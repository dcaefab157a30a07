"""Why a handed-over student loses its teacher's return: trace its policy through the second stage.

Stage 1 trains PPO exactly as ``bench_handoff.py --tasks TASK`` does (same seed, settings and
recording), hands it over to that benchmark's second-stage algorithm and settings, then every
``--every`` steps prints the mean return of 5 deterministic episodes and, on the recorded states:
the share where the student acts as the teacher (``handoff.agreement``: the same discrete action,
or a continuous one within 0.1 on the [-1, 1] scale) and its critic's values: an actor-critic's mean
``Q(s, mu(s))`` at its own action, a Q-learner's mean gap ``|Q(s, 0) - Q(s, 1)|`` and mean Q over both
actions; and the episodes of
its own that ended in a terminal state. The schedules (exploration) are the benchmark's (its
budget), the trace stops at ``--budget``. First, what the recording holds: episode ends, time-limit
ends among them, and (discrete actions) the share of recorded, sampled actions that are the
teacher's greedy ones.

    nice -n 10 python benchmarks/bench_handoff_trace.py --seed 0 --margin-weight 0 1 --budget 8000
    nice -n 10 python benchmarks/bench_handoff_trace.py --task pendulum --seed 0 --margin-weight 0 --budget 2000
    nice -n 10 python benchmarks/bench_handoff_trace.py --task pendulum --seed 0 --margin-weight 0 --bc-weight 0 0.4 1

``--margin-weight`` is ``HandoffConfig.training_margin_weight`` (0: the large-margin term ends with
the critic warm-up), ``--bc-weight`` is ``HandoffConfig.training_bc_weight`` (a DelayedTD3's
cloning term, kept); one trace per pair of values, from the same teacher and recording. ``--set`` and
``--handoff-set`` are ``bench_handoff.py``'s (second-stage settings, ``HandoffConfig`` fields on top
of the task's; the recording keeps ``transitions`` and ``recording_epsilon``).
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import tempfile
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch as th
from bench_handoff import TASKS, handoff_settings, record_teacher, student_kwargs, train_teacher
from settings_args import parse_settings
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.monitor import Monitor

from sb3_ext.common.demonstrations import q_values
from sb3_ext.curriculum.config import HandoffConfig
from sb3_ext.curriculum.handoff import agreement, deterministic_actions, hand_off, recorded_observations
from sb3_ext.data.reader import iter_chunks


class PolicyTrace(BaseCallback):
    """Every ``every`` steps: return, agreement with the teacher and the critic's values on the recorded states."""

    def __init__(self, env_id: str, seed: int, every: int, stop_at: int, observations: np.ndarray,
                 teacher_actions: np.ndarray, seeded: int) -> None:
        super().__init__()
        self.stop_at = stop_at
        self.eval_env = Monitor(gym.make(env_id))
        self.eval_env.reset(seed=10_000 + seed)
        self.every, self.seeded = every, seeded
        self.observations, self.teacher_actions = observations, teacher_actions

    def values(self) -> str:
        """A Q-learner's mean action gap and Q-value, an actor-critic's mean ``Q(s, mu(s))``."""
        obs = th.as_tensor(self.observations).float()
        with th.no_grad():
            if isinstance(self.model.action_space, gym.spaces.Discrete):
                values = q_values(self.model, obs)
                gap = float((values.max(dim=1).values - values.min(dim=1).values).mean())
                return f"gap {gap:6.3f}  mean Q {float(values.mean()):7.2f}"
            policy: Any = self.model.policy
            return f"mean Q(s, mu(s)) {float(policy.critic.q1_forward(obs, policy.actor(obs)).mean()):8.2f}"

    def report(self) -> None:
        mean_return, _ = evaluate_policy(self.model, self.eval_env, n_eval_episodes=5, deterministic=True)
        agrees = agreement(self.model, self.teacher_actions, self.observations)
        buffer = self.model.replay_buffer
        # SB3 stores every episode end in dones and the time-limit ones again in timeouts.
        ends = buffer.dones[self.seeded : buffer.pos] * (1 - buffer.timeouts[self.seeded : buffer.pos])
        failures = int(ends.sum())
        print(f"  {self.num_timesteps:6d} steps: return {mean_return:7.1f}  agreement {agrees:.3f}  "
              f"{self.values()}  own terminal ends {failures}", flush=True)

    def _on_training_start(self) -> None:
        self.report()

    def _on_step(self) -> bool:
        if self.num_timesteps % self.every == 0:
            self.report()
        return self.num_timesteps < self.stop_at


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", default="cartpole", choices=list(TASKS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--margin-weight", type=float, nargs="+", default=[0.0, 1.0])
    parser.add_argument("--bc-weight", type=float, nargs="+", default=[0.0])
    parser.add_argument("--budget", type=int, default=4000, help="second-stage steps per trace")
    parser.add_argument("--every", type=int, default=500)
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="second-stage settings")
    parser.add_argument("--handoff-set", nargs="*", default=[], metavar="KEY=VALUE", help="HandoffConfig fields")
    args = parser.parse_args()
    overrides = parse_settings(parser, "--set", args.set)
    th.set_num_threads(1)
    task = TASKS[args.task]
    handoff_overrides = handoff_settings(task, parse_settings(parser, "--handoff-set", args.handoff_set))
    teacher, env = train_teacher(task, args.seed)
    with tempfile.TemporaryDirectory() as root:
        dataset = Path(root) / "recording"
        record_teacher(task, teacher, env, dataset, args.seed, handoff_overrides)
        chunks = list(iter_chunks(dataset))
        observations = recorded_observations(dataset)
        teacher_actions = deterministic_actions(teacher, observations)
        recorded_actions = np.concatenate([chunk["actions"] for chunk in chunks])
        greedy = ""
        if isinstance(env.action_space, gym.spaces.Discrete):
            share = np.mean(recorded_actions.reshape(-1) == teacher_actions.reshape(-1))
            greedy = f"; recorded action = teacher's greedy action in {share:.3f}"
        print(f"seed {args.seed}: recording of {len(observations)} transitions: "
              f"{int(sum(chunk['dones'].sum() for chunk in chunks))} episode ends, "
              f"{int(sum(chunk['timeouts'].sum() for chunk in chunks))} of them time limits{greedy}", flush=True)
        for weight, bc_weight in itertools.product(args.margin_weight, args.bc_weight):
            print(f"training_margin_weight {weight}, training_bc_weight {bc_weight}:", flush=True)
            model = task["student"]("MlpPolicy", task["env_id"], seed=args.seed,
                                    **student_kwargs(task, "handoff", overrides))
            settings = HandoffConfig(training_margin_weight=weight, training_bc_weight=bc_weight)
            settings = dataclasses.replace(settings, **handoff_overrides)
            report = hand_off(model, teacher, dataset, settings, seed=args.seed)
            trace = PolicyTrace(task["env_id"], args.seed, args.every, args.budget, observations, teacher_actions,
                                 report.transitions_seeded)
            # The benchmark's budget, so that the exploration schedule is the benchmark's; stopped early.
            model.learn(task["budget"], callback=trace)


if __name__ == "__main__":
    main()
