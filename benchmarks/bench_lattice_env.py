"""LatticeGrowth-v0: step speed on the three stage lattices, flatness of the step cost in the
lattice area, and the reference heuristic against neutral physics. One process, three tables:

1. env steps/s for the stage configurations: one env under the reference policy (its own cost
   not counted) and 8 envs under DummyVecEnv with a fixed random action (CPU time of this
   process), and 8 envs under SubprocVecEnv (wall time: the workers run elsewhere);
2. microseconds per step at a fixed n_proposals on 8x8x5, 20x20x10 and 50x50x20, films grown
   from flat to 2 monolayers over and over (the same growth regime on every lattice), with the
   ratio to 8x8x5 (the step must not get dearer as the lattice grows);
3. final roughness, thickness and ESS of "deposit in valleys, hop downhill" against the
   neutral (zero-bias, exact KMC) policy over the same seeds.

    python benchmarks/bench_lattice_env.py            # full run
    python benchmarks/bench_lattice_env.py --quick    # fewer steps and episodes
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

from sb3_ext.envs.lattice.env import LatticeGrowthEnv
from sb3_ext.envs.lattice.heuristics import neutral_action, valley_downhill_action

# lattice, max_steps, n_proposals: the stage files' lattices and episode lengths with the
# n_proposals this environment recommends (each episode grows about half the lattice height
# or less; see the README section).
STAGES = {
    "stage 1": ([8, 8, 5], 100, 4),
    "stage 2": ([20, 20, 10], 200, 16),
    "stage 3": ([50, 50, 20], 500, 32),
}
SIZES = ([8, 8, 5], [20, 20, 10], [50, 50, 20])


def single_env_step_seconds(env: LatticeGrowthEnv, n_steps: int, max_thickness: float = np.inf) -> float:
    """CPU seconds per ``env.step`` under the reference policy (its own cost is not timed).

    The episode restarts (untimed) when it ends or when the film reaches ``max_thickness``
    monolayers, so that lattices of different heights can be timed in the same growth regime.
    """
    obs, info = env.reset(seed=0)
    elapsed = 0.0
    for _ in range(n_steps):
        action = valley_downhill_action(obs)
        start = time.process_time()
        obs, _, terminated, truncated, info = env.step(action)
        elapsed += time.process_time() - start
        if terminated or truncated or info["mean_height"] >= max_thickness:
            obs, info = env.reset()
    return elapsed / n_steps


def vec_env_steps_per_second(vec_env_cls, env_kwargs: dict, n_envs: int, n_steps: int) -> float:
    """Env steps per second: CPU time for DummyVecEnv (all in this process), wall time otherwise."""
    clock = time.process_time if vec_env_cls is DummyVecEnv else time.perf_counter
    vec = make_vec_env("sb3_ext:LatticeGrowth-v0", n_envs=n_envs, seed=0, vec_env_cls=vec_env_cls, env_kwargs=env_kwargs)
    actions = np.random.default_rng(0).uniform(-1, 1, (n_envs, *vec.action_space.shape)).astype(np.float32)
    vec.reset()
    for _ in range(20):  # let the workers load the compiled kernels
        vec.step(actions)
    start = clock()
    for _ in range(n_steps):
        vec.step(actions)
    elapsed = clock() - start
    vec.close()
    return n_envs * n_steps / elapsed


def policy_stats(policy, env_kwargs: dict, n_episodes: int) -> np.ndarray:
    """Per episode: final roughness, final mean height, mean ESS, return."""
    rows = []
    for seed in range(n_episodes):
        env = LatticeGrowthEnv(**env_kwargs)
        obs, _ = env.reset(seed=seed)
        total, done = 0.0, False
        while not done:
            obs, reward, terminated, truncated, info = env.step(policy(obs))
            total += reward
            done = terminated or truncated
        rows.append((info["final_roughness"], info["final_mean_height"], info["mean_ess"], total))
    return np.array(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer steps and episodes")
    args = parser.parse_args()
    n_steps = 2_000 if args.quick else 20_000
    n_vec_steps = 200 if args.quick else 2_000
    n_episodes = 20 if args.quick else 100

    single_env_step_seconds(LatticeGrowthEnv(), 10)  # load the compiled kernels before timing

    print("1) env steps/s, stage configurations (1 env and 8 Dummy: CPU time; 8 Subproc: wall time)")
    print(f"{'stage':>8} | {'lattice':>9} | {'n_prop':>6} | {'1 env':>8} | {'8 Dummy':>8} | {'8 Subproc':>9}")
    for name, (size, max_steps, n_proposals) in STAGES.items():
        kwargs = dict(lattice_size=size, max_steps=max_steps, n_proposals=n_proposals)
        one = 1.0 / single_env_step_seconds(LatticeGrowthEnv(**kwargs), n_steps)
        dummy = vec_env_steps_per_second(DummyVecEnv, kwargs, 8, n_vec_steps)
        subproc = vec_env_steps_per_second(SubprocVecEnv, kwargs, 8, n_vec_steps)
        lattice = "x".join(map(str, size))
        print(f"{name:>8} | {lattice:>9} | {n_proposals:>6} | {one:8,.0f} | {dummy:8,.0f} | {subproc:9,.0f}")

    print("\n2) microseconds per env step (CPU time), fixed n_proposals, films 0-2 ML, ratio to 8x8x5")
    print(f"{'n_prop':>6} | " + " | ".join(f"{'x'.join(map(str, s)):>16}" for s in SIZES))
    for n_proposals in (4, 32):
        costs = [
            single_env_step_seconds(
                LatticeGrowthEnv(lattice_size=s, max_steps=10**9, n_proposals=n_proposals), n_steps, max_thickness=2.0
            )
            for s in SIZES
        ]
        cells = [f"{c * 1e6:7.1f} us ({c / costs[0]:4.2f}x)" for c in costs]
        print(f"{n_proposals:>6} | " + " | ".join(f"{cell:>16}" for cell in cells))

    print(f"\n3) reference policy vs neutral physics, {n_episodes} episodes each (same seeds), mean +- s.e.")
    print(f"{'stage':>8} | {'policy':>15} | {'final W':>13} | {'thickness ML':>12} | {'mean ESS':>8} | {'return':>8}")
    for name, (size, max_steps, n_proposals) in STAGES.items():
        kwargs = dict(lattice_size=size, max_steps=max_steps, n_proposals=n_proposals)
        episodes = n_episodes if size[0] <= 20 else max(4, n_episodes // 10)
        neutral = policy_stats(neutral_action, kwargs, episodes)
        heuristic = policy_stats(valley_downhill_action, kwargs, episodes)
        for label, stats in (("neutral", neutral), ("valley/downhill", heuristic)):
            w_mean, w_sem = stats[:, 0].mean(), stats[:, 0].std(ddof=1) / np.sqrt(len(stats))
            print(
                f"{name:>8} | {label:>15} | {w_mean:6.3f} +- {w_sem:4.3f} | {stats[:, 1].mean():12.2f} | "
                f"{stats[:, 2].mean():8.3f} | {stats[:, 3].mean():8.2f}"
            )
        change = heuristic[:, 0].mean() / neutral[:, 0].mean() - 1
        thickness = heuristic[:, 1].mean() / neutral[:, 1].mean() - 1
        print(f"{'':>8} | roughness change {change:+.1%} at {thickness:+.1%} thickness")


if __name__ == "__main__":
    main()
