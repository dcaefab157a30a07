"""Multi-agent evidence, side by side in one process: the same env steps for every learner.

Two tasks, several seeds each:

* ``spread``: mpe2 ``simple_spread_v3`` (N=3, 25 cycles, continuous actions), the external
  yardstick. Metric: summed return (sum over the 3 agents and 25 steps of an episode).
  Contenders: random actions, SB3 PPO with plain parameter sharing (one network for all
  agents), SharedActor (MLP and NCA actor), MAAC.
* ``swarm``: ``swarm2d_v0`` (2 teams x 4 agents, 100-step episodes). Metric: resources delivered
  per episode (both teams). Contenders: random, independent PPO (one actor-critic and one buffer
  per agent: ``SharedActor(sharing="agent")``), SB3 PPO with plain sharing, SharedActor (one
  network per team), MAAC.

Each trained model is evaluated on fresh episodes with deterministic actions; the table shows
mean +- std over seeds, the share of PPO-with-sharing's gain over random that each contender
reaches (1.00 = as good as PPO), and training CPU seconds. ``env steps`` count agent-steps, as
SB3 does on an agent-slot VecEnv.

Usage::

    python benchmarks/bench_marl_yardsticks.py                 # both tasks, 3 seeds
    python benchmarks/bench_marl_yardsticks.py --quick         # 1 seed, tiny budgets (smoke test)
    python benchmarks/bench_marl_yardsticks.py --task spread --seeds 5 --agent-steps 300000
    python benchmarks/bench_marl_yardsticks.py --task swarm --seeds 1 --first-seed 1  # one more seed
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from collections.abc import Callable

import numpy as np
import torch as th
from stable_baselines3 import PPO
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.vec_env import VecEnv

from sb3_ext.envs.swarm.vec import make_swarm2d_vec_env
from sb3_ext.maac import MAAC
from sb3_ext.multiagent.vec import make_parallel_vec_env
from sb3_ext.shared_actor import SharedActor

EVAL_COPIES = 10


@dataclass
class Contender:
    """A learner: ``build(env, seed)`` returns an untrained model (``None``: random actions)."""

    name: str
    build: Callable[[VecEnv, int], BaseAlgorithm] | None
    joint_observation: bool = False


@dataclass
class Task:
    """A multi-agent task: how to make its agent-slot VecEnv and what to measure."""

    name: str
    metric: str
    make_env: Callable[[int, int, bool], VecEnv]  # (n_copies, seed, joint_observation)
    score: Callable[[dict], float]  # from the first slot's info at the end of an episode
    agent_steps: int
    contenders: list[Contender]
    eval_episodes: int = 50


# ---------------------------------------------------------------------------------------------
# simple_spread_v3
def spread_env(n_copies: int, seed: int, joint_observation: bool) -> VecEnv:
    from mpe2 import simple_spread_v3

    return make_parallel_vec_env(
        lambda: simple_spread_v3.parallel_env(N=3, max_cycles=25, continuous_actions=True),
        n_copies=n_copies,
        seed=seed,
        joint_observation=joint_observation,
    )


SPREAD_PPO = dict(n_steps=128, batch_size=256, n_epochs=10, learning_rate=7e-4, gamma=0.95)
SPREAD_NCA = dict(nca_hidden_dim=64, nca_iterations=2, n_neighbours=2, position_indices=(2, 4))
MAAC_NETWORKS = dict(net_arch=[64, 64], critic_hidden_dim=64, attention_heads=4)
SPREAD_MAAC = dict(batch_size=256, learning_rate=1e-3, gamma=0.95, tau=0.01, n_action_samples=4, policy_kwargs=MAAC_NETWORKS)

SPREAD = Task(
    name="spread",
    metric="summed return",
    make_env=spread_env,
    score=lambda episode: float(episode["r"]),
    agent_steps=150_000,
    contenders=[
        Contender("random", None),
        Contender("PPO, plain sharing (SB3)", lambda env, seed: PPO("MlpPolicy", env, seed=seed, **SPREAD_PPO)),
        Contender("SharedActor (MLP)", lambda env, seed: SharedActor("MlpPolicy", env, seed=seed, **SPREAD_PPO)),
        Contender(
            "SharedActor (NCA)",
            lambda env, seed: SharedActor("NCAPolicy", env, seed=seed, policy_kwargs=SPREAD_NCA, **SPREAD_PPO),
            joint_observation=True,
        ),
        Contender("MAAC", lambda env, seed: MAAC("MlpPolicy", env, seed=seed, learning_starts=6000, **SPREAD_MAAC)),
    ],
)

# ---------------------------------------------------------------------------------------------
# swarm2d_v0
SWARM_REWARDS = {"approach": 0.5}  # shaping on top of the defaults (delivery 1, progress 0.5)


def swarm_env(n_copies: int, seed: int, joint_observation: bool) -> VecEnv:
    return make_swarm2d_vec_env(n_copies, joint_observation, seed, reward_weights=SWARM_REWARDS)


SWARM_PPO = dict(n_steps=128, batch_size=512, n_epochs=10, learning_rate=3e-4, gamma=0.99)
# The shaped swarm rewards are small: scale them up for the critic (the MAAC authors use 100) and
# start the temperature low; eight interchangeable agents share one critic encoder and head.
SWARM_MAAC = dict(batch_size=128, learning_rate=1e-3, gamma=0.99, tau=0.01, n_action_samples=4, reward_scale=20.0,
                  ent_coef="auto_0.1", policy_kwargs={**MAAC_NETWORKS, "share_critic": True})  # fmt: skip

SWARM = Task(
    name="swarm",
    metric="delivered / episode",
    make_env=swarm_env,
    score=lambda episode: float(episode["delivered"]),
    agent_steps=800_000,
    eval_episodes=40,
    contenders=[
        Contender("random", None),
        Contender(
            "independent PPO (one net per agent)",
            lambda env, seed: SharedActor("MlpPolicy", env, sharing="agent", seed=seed, **SWARM_PPO),
        ),
        Contender("PPO, plain sharing (SB3)", lambda env, seed: PPO("MlpPolicy", env, seed=seed, **SWARM_PPO)),
        Contender("SharedActor (one net per team)", lambda env, seed: SharedActor("MlpPolicy", env, seed=seed, **SWARM_PPO)),
        Contender("MAAC", lambda env, seed: MAAC("MlpPolicy", env, seed=seed, learning_starts=10_000, **SWARM_MAAC)),
    ],
)


# ---------------------------------------------------------------------------------------------
def evaluate(task: Task, act: Callable[[np.ndarray], np.ndarray], joint_observation: bool, seed: int) -> float:
    """Mean score over ``task.eval_episodes`` fresh episodes."""
    env = task.make_env(EVAL_COPIES, 10_000 + seed, joint_observation)
    obs = env.reset()
    scores: list[float] = []
    while len(scores) < task.eval_episodes:
        obs, _, dones, infos = env.step(act(obs))
        scores += [task.score(info["episode"]) for done, info in zip(dones, infos, strict=False) if done and "episode" in info]
    env.close()
    return float(np.mean(scores[: task.eval_episodes]))


def uniform_policy(space, rng: np.random.Generator) -> Callable[[np.ndarray], np.ndarray]:
    """Uniformly random actions for every row of a batch of observations."""

    def act(obs: np.ndarray) -> np.ndarray:
        return rng.uniform(space.low, space.high, (len(obs), *space.shape)).astype(space.dtype)

    return act


def run(task: Task, seeds: list[int], agent_steps: int, n_copies: int) -> dict[str, tuple[list[float], float]]:
    """Per contender: the score of every seed and the mean training CPU seconds."""
    results: dict[str, tuple[list[float], float]] = {}
    for contender in task.contenders:
        scores, cpu = [], []
        for seed in seeds:
            env = task.make_env(n_copies, seed, contender.joint_observation)
            if contender.build is None:
                scores.append(evaluate(task, uniform_policy(env.action_space, np.random.default_rng(seed)), False, seed))
                cpu.append(0.0)
                continue
            model = contender.build(env, seed)
            start = time.process_time()
            model.learn(agent_steps)
            cpu.append(time.process_time() - start)
            scores.append(evaluate(task, lambda obs, model=model: model.predict(obs, deterministic=True)[0],
                                   contender.joint_observation, seed))  # fmt: skip
            print(f"  {task.name} | {contender.name} | seed {seed}: {scores[-1]:.2f} ({cpu[-1]:.0f} CPU s)", flush=True)
        results[contender.name] = (scores, float(np.mean(cpu)))
    return results


def print_table(task: Task, results: dict[str, tuple[list[float], float]], seeds: list[int], agent_steps: int) -> None:
    random_mean = np.mean(results["random"][0])
    ppo_mean = np.mean(results["PPO, plain sharing (SB3)"][0])
    print(f"\n{task.name}: {agent_steps:,} agent-steps per run, seeds {seeds}, "
          f"{task.eval_episodes} deterministic evaluation episodes per run\n")  # fmt: skip
    print(f"| {'contender':<36} | {task.metric:>22} | {'share of PPO gain':>17} | {'train CPU s':>11} |")
    print(f"|{'-' * 38}|{'-' * 24}|{'-' * 19}|{'-' * 13}|")
    for name, (scores, cpu) in results.items():
        share = (np.mean(scores) - random_mean) / (ppo_mean - random_mean) if ppo_mean != random_mean else float("nan")
        value = f"{np.mean(scores):.2f} +- {np.std(scores):.2f}"
        print(f"| {name:<36} | {value:>22} | {share:>17.2f} | {cpu:>11.0f} |")
    print(flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", choices=["spread", "swarm", "all"], default="all")
    parser.add_argument("--seeds", type=int, default=3, help="seeds per contender")
    parser.add_argument("--first-seed", type=int, default=0, help="seeds are first-seed, first-seed + 1, ...")
    parser.add_argument("--agent-steps", type=int, default=None, help="training budget (default: per task)")
    parser.add_argument("--copies", type=int, default=8, help="env copies during training")
    parser.add_argument("--quick", action="store_true", help="1 seed, 20k agent-steps, 10 evaluation episodes")
    args = parser.parse_args()
    th.set_num_threads(1)
    tasks = [SPREAD, SWARM] if args.task == "all" else [SPREAD if args.task == "spread" else SWARM]
    seeds = [args.first_seed] if args.quick else list(range(args.first_seed, args.first_seed + args.seeds))
    for task in tasks:
        if args.quick:
            task.eval_episodes = 10
        agent_steps = 20_000 if args.quick else (args.agent_steps or task.agent_steps)
        results = run(task, seeds, agent_steps, args.copies)
        print_table(task, results, seeds, agent_steps)


if __name__ == "__main__":
    main()
