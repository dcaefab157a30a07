"""Phase 2 on the rock world: learned vs exact values, time to 5% agreement, behaviour, throughput.

For each seed, Phase2 trains with the zoo settings (sb3_ext/hyperparams/phase2.yml) on
AssistGrid-v0's "rock" map (horizon 6). Every ``--eval-every`` steps the model is checked with
``evaluate``: V_h^e, X_h and Q_r within 5% of the exact backward-induction solution and greedy =
exact on the states the exact soft AND the exact greedy robot visit with probability >= 1%, and
every goal's reach probability under the learned greedy robot within 0.05 of the exact greedy
robots'; the clock is paused while checking, so the time to that point is pure training time.
Afterwards the robot is rolled out with the human pursuing the far end of the corridor (reachable
only once the rock is pushed aside and the robot steps back out of the doorway). SB3's DQN trains
side by side on the same env and budget with the env's reward (a human reaching its goal) as the
throughput and behaviour yardstick, and the actor-learner mode (2 actors) is timed on the first
seed. The full run ends with the throughput table below and ablations of design choices.

Throughput (``--throughput`` runs only this): env steps per CPU second of this process for SB3's
DQN and Phase2 on the same world ("rock" and "rocks", each map's default horizon) with the same
batch size and network, in turn in one process, ``--rounds`` times (medians reported, with the
load average): one update per four env steps (DQN: one env, ``train_freq=4``, its default; Phase2:
four envs, ``train_freq=1``) and one update per env step (one env each).

    python benchmarks/bench_phase2_rock.py                 # 3 seeds, 20k steps (docs/phase2.md)
    python benchmarks/bench_phase2_rock.py --quick         # 2 seeds, 6k steps
    python benchmarks/bench_phase2_rock.py --throughput    # the DQN comparison only
"""

from __future__ import annotations

import argparse
import os
import time

import gymnasium as gym
import numpy as np
import sb3_ext  # noqa: F401  (registers AssistGrid-v0)
import torch as th
from sb3_ext.phase2 import Phase2
from sb3_ext.phase2.evaluation import (
    evaluate,
    exact_robot,
    goal_reach_rate,
    model_robot,
    uniform_robot,
    visited_states,
)
from sb3_ext.phase2.exact import occupancy, solve
from sb3_ext.zoo.config import HYPERPARAMS_DIR, read_zoo_entry
from stable_baselines3 import DQN
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.env_util import make_vec_env

HYPERPARAMS = HYPERPARAMS_DIR / "phase2.yml"
TOLERANCE = 0.05


def zoo_settings() -> tuple[dict, dict]:
    entry = read_zoo_entry("phase2", "AssistGrid-v0", HYPERPARAMS)
    return entry.env_kwargs, entry.model_kwargs


class AgreementClock(BaseCallback):
    """Checks against the exact solution every ``every`` steps; keeps training time net of that."""

    def __init__(self, sol, every: int):
        super().__init__()
        self.sol, self.every = sol, every
        self.eval_wall = self.eval_cpu = 0.0
        self.first_within: tuple[int, float, float] | None = None  # (env steps, wall s, CPU s)

    def _on_training_start(self) -> None:
        self.start_wall, self.start_cpu = time.perf_counter(), time.process_time()

    def _on_step(self) -> bool:
        if self.num_timesteps % self.every == 0:
            wall, cpu = time.perf_counter(), time.process_time()
            within = evaluate(self.model, self.sol).within(TOLERANCE)
            self.eval_wall += time.perf_counter() - wall
            self.eval_cpu += time.process_time() - cpu
            if self.first_within is None and within:
                self.first_within = (self.num_timesteps, *self.train_seconds())
        return True

    def train_seconds(self) -> tuple[float, float]:
        """Training time so far, wall clock and this process's CPU time."""
        return (time.perf_counter() - self.start_wall - self.eval_wall,
                time.process_time() - self.start_cpu - self.eval_cpu)


def cpu_rate(model, steps: int) -> float:
    """Env steps per CPU second of this process while ``model`` learns ``steps`` steps."""
    cpu = time.process_time()
    model.learn(steps)
    return steps / (time.process_time() - cpu)


def throughput(settings: dict, maps: list[str], steps: int, rounds: int) -> None:
    """DQN and Phase2 in turn, ``rounds`` times per map and update rate; medians and the load."""
    dqn_kwargs = dict(learning_starts=settings["learning_starts"], batch_size=settings["batch_size"],
                      policy_kwargs={"net_arch": settings["policy_kwargs"]["net_arch"]})
    print(f"\nthroughput, {steps} env steps per run, env steps per CPU second, median of {rounds} rounds "
          "(DQN, then Phase2, in turn; min-max of the ratio in brackets)")
    print("map   | updates per env step | SB3 DQN | Phase2 | ratio              | load average (1 min) before, after")
    for map_name in maps:
        env = gym.make("AssistGrid-v0", map_name=map_name)
        for label, dqn_freq, n_envs in (("1/4", 4, 4), ("1", 1, 1)):
            load = os.getloadavg()[0]
            rates = []
            for r in range(rounds):
                dqn = cpu_rate(DQN("MlpPolicy", env, seed=r, train_freq=dqn_freq, **dqn_kwargs), steps)
                venv = make_vec_env("AssistGrid-v0", n_envs=n_envs, env_kwargs={"map_name": map_name}, seed=r)
                phase2 = cpu_rate(Phase2("MlpPolicy", venv, seed=r, **{**settings, "train_freq": 1}), steps)
                rates.append((dqn, phase2, phase2 / dqn))
            dqn, phase2, ratio = np.median(np.array(rates), axis=0)
            low, high = min(r[2] for r in rates), max(r[2] for r in rates)
            print(f"{map_name:<5} | {label:>20} | {dqn:7.0f} | {phase2:6.0f} | {ratio:5.2f} ({low:.2f}-{high:.2f}) | "
                  f"{load:.1f}, {os.getloadavg()[0]:.1f}", flush=True)


def reach(prior, robot, goal, episodes, seed) -> float:
    return goal_reach_rate(prior, robot, goal, episodes, seed=seed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--eval-every", type=int, default=500)
    parser.add_argument("--episodes", type=int, default=500, help="roll-outs per behaviour estimate")
    parser.add_argument("--quick", action="store_true", help="2 seeds, 6000 steps, 200 roll-outs")
    parser.add_argument("--throughput", action="store_true", help="only the throughput comparison with DQN")
    parser.add_argument("--throughput-steps", type=int, default=6000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if args.quick:
        args.seeds, args.steps, args.episodes = 2, 6000, 200
    th.set_num_threads(1)

    env_kwargs, settings = zoo_settings()
    if args.throughput:
        throughput(settings, ["rock", "rocks"], args.throughput_steps, args.rounds)
        return
    env = gym.make("AssistGrid-v0", **env_kwargs)
    prior = env.unwrapped.prior
    config = Phase2("MlpPolicy", env, **settings).config
    t0 = time.perf_counter()
    sol = solve(prior, config)
    states = visited_states(occupancy(prior, sol), prior.world.is_terminal)
    exact_seconds = time.perf_counter() - t0
    far = next(g for g in prior.goals[0] if g.cells == frozenset({(2, 4)}))
    exact_reach = reach(prior, exact_robot(sol), far, args.episodes, 0)
    rng = np.random.default_rng(0)
    exact_soft = reach(prior, lambda s: int(rng.choice(len(sol.pi_r[s]), p=sol.pi_r[s])), far, args.episodes, 0)
    uniform_reach = reach(prior, uniform_robot(env.action_space.n, 0), far, args.episodes, 0)
    gaps = []  # relative gap between the two best distinct exact Q_r values of each visited state
    for s in states:
        distinct = np.unique(np.round(sol.q_r[s], 12))
        if len(distinct) > 1:
            gaps.append((distinct[-1] - distinct[-2]) / abs(distinct[-1]))
    print(f"exact solver: {len(sol.states)} states, {len(states)} visited with p >= 0.01, "
          f"{exact_seconds:.2f} s (backward induction + occupancy)", flush=True)
    print(f"human reaches the far end: exact greedy robot {exact_reach:.2f}, exact pi_r {exact_soft:.2f}, "
          f"uniform robot {uniform_reach:.2f}")
    print(f"visited states whose two best different moves are within 1% of each other: "
          f"{sum(g < 0.01 for g in gaps)} (smallest gap {100 * min(gaps):.3f}%)\n", flush=True)

    rows = []
    for seed in range(args.seeds):
        model = Phase2("MlpPolicy", env, seed=seed, **settings)
        clock = AgreementClock(sol, args.eval_every)
        model.learn(args.steps, callback=clock)
        seconds, cpu_seconds = clock.train_seconds()
        final = evaluate(model, sol)
        greedy = reach(prior, model_robot(model, deterministic=True), far, args.episodes, seed)
        soft = reach(prior, model_robot(model, deterministic=False), far, args.episodes, seed)
        rows.append(dict(seed=seed, final=final, first=clock.first_within, seconds=seconds, cpu=cpu_seconds,
                         greedy=greedy, soft=soft,
                         freed=greedy >= 0.9 * exact_reach))

    print(f"Phase2, {args.steps} env steps per seed; errors are worst relative errors over the visited states;")
    print("times are training only (wall clock, and CPU time of this process in brackets)")
    print("seed | V_h^e err | X_h err | Q_r err | greedy = exact | steps to 5% | s to 5% (CPU) | steps/s (per CPU s) | "
          "reach greedy | reach pi_r | frees human")
    for r in rows:
        f = r["final"].soft
        first = (f"{r['first'][0]:>11d} | {r['first'][1]:6.1f} ({r['first'][2]:5.1f})" if r["first"]
                 else f"{'never':>11} | {'':>14}")
        print(f"{r['seed']:>4d} | {f.v_h_e:9.4f} | {f.x_h:7.4f} | {f.q_r:7.4f} | {f.greedy_agreement:14.2f} | {first} | "
              f"{args.steps / r['seconds']:7.1f} ({args.steps / r['cpu']:9.1f}) | {r['greedy']:12.2f} | "
              f"{r['soft']:10.2f} | {'yes' if r['freed'] else 'no':>11}")
    within = [r for r in rows if r["first"]]
    for r in rows:
        print(f"seed {r['seed']} final evaluation:\n{r['final'].summary()}")
    print(f"\nwithin 5% (soft- and greedy-visited states, and reach) at the end: "
          f"{sum(r['final'].within(TOLERANCE) for r in rows)}/{len(rows)} "
          f"seeds; first reached in {len(within)}/{len(rows)} seeds")
    if within:
        print(f"median time to 5%: {np.median([r['first'][0] for r in within]):.0f} env steps, "
              f"{np.median([r['first'][1] for r in within]):.1f} s wall, "
              f"{np.median([r['first'][2] for r in within]):.1f} s CPU of training")
    print(f"robot frees the human in {sum(r['freed'] for r in rows)}/{len(rows)} seeds "
          f"(greedy reach rate >= 90% of the exact robot's)")

    # Side by side with SB3's DQN (same env, budget, network width) and the actor-learner mode.
    phase2_rate = np.mean([args.steps / r["seconds"] for r in rows])
    dqn = DQN("MlpPolicy", env, seed=0, learning_starts=64, target_update_interval=50,
              batch_size=settings["batch_size"], policy_kwargs=dict(net_arch=settings["policy_kwargs"]["net_arch"]))
    t0 = time.perf_counter()
    dqn.learn(args.steps)
    dqn_rate = args.steps / (time.perf_counter() - t0)
    dqn_reach = reach(prior, lambda s: int(dqn.predict(prior.world.encode(s), deterministic=True)[0]), far,
                      args.episodes, 0)
    async_model = Phase2("MlpPolicy", env, seed=0, n_actors=2, **settings)
    t0 = time.perf_counter()
    async_model.learn(args.steps)
    async_rate = args.steps / (time.perf_counter() - t0)
    async_final = evaluate(async_model, sol).soft
    print("\nthroughput (env steps/s of training, one update per step) and behaviour")
    print("run                      | steps/s | ratio to DQN | reach greedy")
    print(f"SB3 DQN (env reward)     | {dqn_rate:7.1f} | {1.0:12.2f} | {dqn_reach:12.2f}")
    print(f"Phase2 (mean of seeds)   | {phase2_rate:7.1f} | {phase2_rate / dqn_rate:12.2f} | "
          f"{np.mean([r['greedy'] for r in rows]):12.2f}")
    print(f"Phase2, 2 actors, seed 0 | {async_rate:7.1f} | {async_rate / dqn_rate:12.2f} | "
          f"{reach(prior, model_robot(async_model), far, args.episodes, 0):12.2f}")
    print(f"actor-learner final errors: V_h^e {async_final.v_h_e:.4f}, X_h {async_final.x_h:.4f}, "
          f"Q_r {async_final.q_r:.4f}, greedy = exact {async_final.greedy_agreement:.2f}")
    if args.quick:
        return
    throughput(settings, ["rock", "rocks"], args.throughput_steps, args.rounds)

    # Ablations of design choices, seed 0: the seed document's dropout 0.5, no successor
    # expansion, and sampled instead of model-based targets.
    variants = {
        "zoo settings": {},
        "dropout 0.5": {"policy_kwargs": {**settings["policy_kwargs"], "dropout": 0.5}},
        "no successor expansion": {"expand_successors": False},
        "sampled targets": {"model_based_targets": False},
    }
    print(f"\nablations, seed 0, {args.steps} steps")
    print("variant                | V_h^e err | X_h err | Q_r err | greedy = exact | steps to 5%")
    for name, change in variants.items():
        model = Phase2("MlpPolicy", env, seed=0, **{**settings, **change})
        clock = AgreementClock(sol, args.eval_every)
        model.learn(args.steps, callback=clock)
        f = evaluate(model, sol).soft
        first = f"{clock.first_within[0]:>11d}" if clock.first_within else f"{'never':>11}"
        print(f"{name:<22} | {f.v_h_e:9.4f} | {f.x_h:7.4f} | {f.q_r:7.4f} | {f.greedy_agreement:14.2f} | {first}")


if __name__ == "__main__":
    main()
