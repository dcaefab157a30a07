"""Swarm2D simulation speed: agent-steps per second on one core at 2 x 4 agents.

Side by side in one process, with the same random actions:

* ``swarm2d_v0`` through the PettingZoo ``ParallelEnv`` API (one arena, dicts per step);
* SuperSuit's ``pettingzoo_env_to_vec_env_v1`` + ``concat_vec_envs_v1`` (the usual SB3 route);
* our generic adapter (``make_parallel_vec_env``: SB3 ``DummyVecEnv`` of joint envs + slots);
* our fast path (``make_swarm2d_vec_env``: every copy in one numpy world + slots).

Usage: ``python benchmarks/bench_swarm_env.py [--quick] [--copies 8 64]``
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
import supersuit
import torch

from sb3_ext.envs.swarm import swarm2d_v0
from sb3_ext.envs.swarm.vec import make_swarm2d_vec_env
from sb3_ext.multiagent.vec import make_parallel_vec_env


def rate(step: Callable[[int], None], agents_per_step: int, n_steps: int, repeats: int = 3) -> tuple[float, float]:
    """Agent-steps per CPU second and per wall-clock second, best of ``repeats``.

    CPU time (``time.process_time``) is what "on one core" means on a shared machine: it counts
    only the time this process ran, not the time it waited for a core.
    """
    step(min(n_steps, 20))  # warm-up
    best_cpu = best_wall = np.inf
    for _ in range(repeats):
        cpu, wall = time.process_time(), time.perf_counter()
        step(n_steps)
        best_cpu = min(best_cpu, time.process_time() - cpu)
        best_wall = min(best_wall, time.perf_counter() - wall)
    return n_steps * agents_per_step / best_cpu, n_steps * agents_per_step / best_wall


def parallel_env_stepper(rng: np.random.Generator) -> tuple[Callable[[int], None], int]:
    env = swarm2d_v0.parallel_env()
    env.reset(seed=0)
    actions = rng.uniform(-1, 1, size=(256, len(env.possible_agents), 3)).astype(np.float32)
    dicts = [dict(zip(env.possible_agents, a, strict=False)) for a in actions]

    def step(n: int) -> None:
        for i in range(n):
            env.step(dicts[i % len(dicts)])
            if not env.agents:
                env.reset()

    return step, len(env.possible_agents)


def vec_env_stepper(venv, rng: np.random.Generator) -> tuple[Callable[[int], None], int]:
    venv.reset()
    actions = rng.uniform(-1, 1, size=(256, venv.num_envs, 3)).astype(np.float32)

    def step(n: int) -> None:
        for i in range(n):
            venv.step(actions[i % len(actions)])

    return step, venv.num_envs


def supersuit_vec_env(n_copies: int):
    venv = supersuit.pettingzoo_env_to_vec_env_v1(swarm2d_v0.parallel_env())
    return supersuit.concat_vec_envs_v1(venv, n_copies, num_cpus=0, base_class="stable_baselines3")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps")
    parser.add_argument("--copies", type=int, nargs="+", default=[8, 64], help="env copies for the VecEnvs")
    args = parser.parse_args()
    torch.set_num_threads(1)
    n_steps = 300 if args.quick else 2000
    rng = np.random.default_rng(0)

    rows: list[tuple[str, tuple[float, float]]] = []
    rows.append(("swarm2d_v0 ParallelEnv, 1 copy", rate(*parallel_env_stepper(rng), n_steps=n_steps)))
    for n in args.copies:
        steps = max(n_steps * 8 // n, 50)
        rows.append((f"SuperSuit concat_vec_envs, {n} copies", rate(*vec_env_stepper(supersuit_vec_env(n), rng), steps)))
        generic = make_parallel_vec_env(swarm2d_v0.parallel_env, n_copies=n, seed=0)
        rows.append((f"ours, generic DummyVecEnv, {n} copies", rate(*vec_env_stepper(generic, rng), steps)))
        rows.append((f"ours, batched world, {n} copies", rate(*vec_env_stepper(make_swarm2d_vec_env(n, seed=0), rng), steps)))

    base = rows[0][1][0]
    print(f"\nSwarm2D 2 x 4 agents, one core, random actions ({n_steps} steps of the single env)\n")
    print(f"| {'path':<40} | {'agent-steps/CPU-s':>17} | {'agent-steps/wall-s':>18} | {'vs ParallelEnv':>14} |")
    print(f"|{'-' * 42}|{'-' * 19}|{'-' * 20}|{'-' * 16}|")
    for name, (cpu, wall) in rows:
        print(f"| {name:<40} | {cpu:>17,.0f} | {wall:>18,.0f} | {cpu / base:>13.2f}x |")


if __name__ == "__main__":
    main()
