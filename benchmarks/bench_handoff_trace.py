"""Why a handed-over TwinDQN loses CartPole: trace the greedy ranking through the second stage.

Stage 1 trains PPO on CartPole-v1 exactly as ``bench_handoff.py --tasks cartpole`` does (same
seed, settings and recording), hands it over to a TwinDQN with that benchmark's second-stage
settings, then every ``--every`` steps prints the mean return of 5 deterministic episodes and, on
the recorded states: the share where the TwinDQN's greedy action is the teacher's, the mean gap
``|Q(s, 0) - Q(s, 1)|`` and the mean Q-value; also the episodes of its own that ended in failure.
The exploration schedule is the benchmark's (its 30 000-step budget), the trace stops at
``--budget``. Before that, what the recording holds: terminal and time-limit ends, and the share of recorded
(sampled) actions that are the teacher's greedy ones.

    nice -n 10 python benchmarks/bench_handoff_trace.py --seed 0 --margin-weight 0 1 --budget 8000

``--margin-weight`` is ``HandoffConfig.training_margin_weight`` (0: the large-margin term ends with
the critic warm-up); one trace per value, from the same teacher and recording.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch as th
from bench_handoff import TASKS, student_kwargs
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.monitor import Monitor

from sb3_ext.common.demonstrations import q_values
from sb3_ext.curriculum.config import HandoffConfig
from sb3_ext.curriculum.handoff import deterministic_actions, hand_off, record_handoff, recorded_observations
from sb3_ext.data.reader import iter_chunks


class RankingTrace(BaseCallback):
    """Every ``every`` steps: return, agreement with the teacher, action gap and Q-values on the recorded states."""

    def __init__(self, env_id: str, seed: int, every: int, stop_at: int, observations: np.ndarray,
                 teacher_actions: np.ndarray, seeded: int) -> None:
        super().__init__()
        self.stop_at = stop_at
        self.eval_env = Monitor(gym.make(env_id))
        self.eval_env.reset(seed=10_000 + seed)
        self.every, self.seeded = every, seeded
        self.observations, self.teacher_actions = th.as_tensor(observations).float(), teacher_actions.reshape(-1)

    def report(self) -> None:
        mean_return, _ = evaluate_policy(self.model, self.eval_env, n_eval_episodes=5, deterministic=True)
        with th.no_grad():
            values = q_values(self.model, self.observations)
        agreement = float(np.mean(values.argmax(dim=1).numpy() == self.teacher_actions))
        gap = float((values.max(dim=1).values - values.min(dim=1).values).mean())
        buffer = self.model.replay_buffer
        failures = int(buffer.dones[self.seeded : buffer.pos].sum())  # SB3 keeps time-limit ends out of dones
        print(f"  {self.num_timesteps:6d} steps: return {mean_return:6.1f}  agreement {agreement:.3f}  "
              f"gap {gap:6.3f}  mean Q {float(values.mean()):7.2f}  own failures {failures}", flush=True)

    def _on_training_start(self) -> None:
        self.report()

    def _on_step(self) -> bool:
        if self.num_timesteps % self.every == 0:
            self.report()
        return self.num_timesteps < self.stop_at


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--margin-weight", type=float, nargs="+", default=[0.0, 1.0])
    parser.add_argument("--budget", type=int, default=4000, help="second-stage steps per trace")
    parser.add_argument("--every", type=int, default=500)
    args = parser.parse_args()
    th.set_num_threads(1)
    task = TASKS["cartpole"]
    ppo_kwargs = dict(task["ppo"])
    env = make_vec_env(task["env_id"], n_envs=ppo_kwargs.pop("n_envs"), seed=args.seed)
    teacher = PPO("MlpPolicy", env, seed=args.seed, **ppo_kwargs).learn(task["stage1_steps"])
    with tempfile.TemporaryDirectory() as root:
        dataset = Path(root) / "recording"
        record_handoff(teacher, env, dataset, 10_000, env_id=task["env_id"])
        chunks = list(iter_chunks(dataset))
        observations = recorded_observations(dataset)
        teacher_actions = deterministic_actions(teacher, observations).reshape(-1)
        recorded_actions = np.concatenate([chunk["actions"] for chunk in chunks]).reshape(-1)
        print(f"seed {args.seed}: recording of {len(observations)} transitions: "
              f"{int(sum(chunk['dones'].sum() for chunk in chunks))} episode ends, "
              f"{int(sum(chunk['timeouts'].sum() for chunk in chunks))} of them time limits; "
              f"recorded action = teacher's greedy action in {np.mean(recorded_actions == teacher_actions):.3f}",
              flush=True)
        for weight in args.margin_weight:
            print(f"training_margin_weight {weight}:", flush=True)
            model = task["student"]("MlpPolicy", task["env_id"], seed=args.seed, **student_kwargs(task, "handoff"))
            report = hand_off(model, teacher, dataset, HandoffConfig(training_margin_weight=weight), seed=args.seed)
            trace = RankingTrace(task["env_id"], args.seed, args.every, args.budget, observations, teacher_actions,
                                 report.transitions_seeded)
            # The benchmark's budget, so that the exploration schedule is the benchmark's; stopped early.
            model.learn(task["budget"], callback=trace)


if __name__ == "__main__":
    main()
