"""Phase 2 at scale: the exact solver on the large maps and a 10,000-state world, then Phase2
learning each map against its exact solution (``evaluate``), side by side with SB3's DQN.

For every map and seed, Phase2 trains with ``sb3_ext/hyperparams/phase2.yml``'s settings, its
warm-up stretched by the map's factor below, on ``--n-envs`` copies of the env. Every
``--eval-every`` env steps the model is checked with :func:`sb3_ext.phase2.evaluation.evaluate`
(values within 5% of exact on the states the exact soft AND greedy robots visit, greedy = exact
there, and every human goal's reach probability under the learned greedy robot within 0.05 of
the range exact greedy robots span); the clocks are paused while checking, so the time to that
point is pure training time (this process's CPU seconds). Throughput is compared with a DQN of the
same batch size and network on the same world, in the same process: both with one update per
four env steps (DQN: one env, ``train_freq=4``, its default; Phase2: four envs, ``train_freq=1``),
and both with one env and one update per step.

    python benchmarks/bench_phase2_maps.py                              # every map, 3 seeds
    python benchmarks/bench_phase2_maps.py --maps rock rocks --seeds 1  # a subset
"""

from __future__ import annotations

import argparse
import ast
import time

import gymnasium as gym
import numpy as np
import torch as th
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.env_util import make_vec_env

import sb3_ext  # noqa: F401  (registers AssistGrid-v0)
from bench_phase2_rock import throughput  # the side-by-side DQN comparison, one map
from sb3_ext.envs.assist import MAPS
from sb3_ext.phase2 import Phase2
from sb3_ext.phase2.evaluation import Evaluation, evaluate
from sb3_ext.phase2.exact import solve
from sb3_ext.phase2.power import PowerParams
from sb3_ext.zoo.config import read_zoo_entry

# Per map: env steps of training, and the factor the yml's warm-up stages are stretched by.
BUDGETS = {"rock": (40_000, 4.0), "rocks": (150_000, 15.0), "key_door_big": (120_000, 6.0),
           "two_humans": (150_000, 15.0)}
# Per map: settings that differ from the yml. On key_door_big at beta_r = 10 the soft robot is
# nearly uniform, so the value of walking toward the key (which pays only if the robot keeps
# walking) is tiny: the exact greedy robot's first moves beat staying by 1.7e-6 to 2e-4 of Q_r
# (relative), below what any learned Q_r can resolve (float32 itself resolves about 1e-7). At
# beta_r = 100 the soft robot follows the detour and those margins are about 0.13; the exact
# greedy robot's reach is the same (0.546). `exact_timings` prints the margins. The exact solution
# each run is judged against is computed at the run's own beta_r. Even there the moves differ by
# ~10% of Q_r while states differ by orders of magnitude, so Q_r's loss weights the differences
# between moves (q_r_advantage_weight), and half of each batch is drawn uniformly over the known
# states so that the end of the detour, which the robot rarely reaches, is fitted too.
MAP_SETTINGS: dict[str, dict] = {"key_door_big": {
    "beta_r": 100.0, "uniform_state_fraction": 0.5, "q_r_advantage_weight": 10.0,
    "policy_kwargs": {"net_arch": [256, 256]}}}
STAGE_KEYS = ("warmup_v_h_e_steps", "warmup_x_h_steps", "warmup_q_r_steps", "beta_r_rampup_steps", "lr_decay_steps")


class EvaluationClock(BaseCallback):
    """Runs ``evaluate`` every ``every`` env steps; keeps the training CPU time net of that."""

    def __init__(self, sol, every: int):
        super().__init__()
        self.sol, self.every, self.next_check = sol, every, every
        self.eval_cpu = 0.0
        self.first_within: tuple[int, float] | None = None  # (env steps, CPU s)

    def _on_training_start(self) -> None:
        self.start_cpu = time.process_time()

    def _on_step(self) -> bool:
        if self.num_timesteps >= self.next_check:
            self.next_check += self.every
            cpu = time.process_time()
            within = evaluate(self.model, self.sol).within()
            self.eval_cpu += time.process_time() - cpu
            if within and self.first_within is None:
                self.first_within = (self.num_timesteps, self.train_cpu())
        return True

    def train_cpu(self) -> float:
        return time.process_time() - self.start_cpu - self.eval_cpu


def first_move_margin(sol) -> float:
    """How much (relative) the exact greedy robot's first move beats the next-best distinct move in Q_r."""
    q = np.sort(sol.q_r[sol.states[0]])[::-1]
    worse = q[q < q[0] - 1e-12 * abs(q[0])]
    return float((q[0] - worse[0]) / abs(q[0])) if len(worse) else 0.0


def exact_timings(map_names: list[str]) -> None:
    print("exact solver (EMPO conventions), CPU seconds of backward induction; margin of the exact greedy "
          "robot's first move over the next-best move (relative Q_r), at beta_r 10 and at the map's beta_r")
    worlds = [(name, MAPS[name].get("max_steps", 8)) for name in map_names] + [("key_door_big", 34)]
    for name, horizon in worlds:
        prior = gym.make("AssistGrid-v0", map_name=name, max_steps=horizon).unwrapped.prior
        cpu = time.process_time()
        sol = solve(prior, PowerParams())
        line = f"  {name}, horizon {horizon}: {len(sol.states)} states, {time.process_time() - cpu:.1f} s"
        beta_r = MAP_SETTINGS.get(name, {}).get("beta_r", 10.0)
        margins = f"{first_move_margin(sol):.1e}"
        if beta_r != 10.0:
            margins += f", beta_r {beta_r:g}: {first_move_margin(solve(prior, PowerParams(beta_r=beta_r))):.1e}"
        print(f"{line}; first-move margin {margins}", flush=True)


def report_header(name: str) -> None:
    print(f"\n{name}: seed | soft-visited states: V_h^e X_h Q_r err, greedy=exact | greedy-visited: same | "
          "vs exact values of the learned soft robot: V_h^e X_h Q_r err | reach gap | "
          "mean reach: learned greedy / exact greedy / uniform | within | to within: steps, CPU s | steps per CPU s",
          flush=True)


def report_row(seed: int, e: Evaluation, first: tuple[int, float] | None, cpu: float, steps: int) -> None:
    """One seed's line under :func:`report_header`, printed as soon as the seed is done."""
    s, g = e.soft, e.greedy
    to = f"{first[0]:>7d}, {first[1]:6.0f}" if first else f"{'never':>15}"
    print(f"  {seed} | {s.v_h_e:.3f} {s.x_h:.3f} {s.q_r:.3f}, {s.greedy_agreement:.2f} | "
          f"{g.v_h_e:.3f} {g.x_h:.3f} {g.q_r:.3f}, {g.greedy_agreement:.2f} | "
          f"{e.own.v_h_e:.3f} {e.own.x_h:.3f} {e.own.q_r:.3f} | {e.reach_gap:.3f} | "
          f"{e.reach['learned_greedy'].mean():.3f} / {e.reach['exact_greedy'].mean():.3f} / "
          f"{e.reach['uniform'].mean():.3f} | {'yes' if e.within() else 'no':>3} | {to} | {steps / cpu:6.0f}",
          flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--maps", nargs="+", default=list(BUDGETS), choices=sorted(BUDGETS))
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=None, help="env steps per run (default: the map's budget)")
    parser.add_argument("--n-envs", type=int, default=4)
    parser.add_argument("--eval-every", type=int, default=10_000)
    parser.add_argument("--throughput-steps", type=int, default=6000)
    parser.add_argument("--skip-exact", action="store_true")
    parser.add_argument("--stretch", type=float, default=None, help="warm-up factor (default: the map's)")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="Phase2 settings over the map's, e.g. directed_exploration=True beta_r=100.0")
    args = parser.parse_args()
    th.set_num_threads(1)
    settings = read_zoo_entry("phase2", "AssistGrid-v0").model_kwargs
    overrides = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            parser.error(f"--set {item!r}: expected KEY=VALUE")
        overrides[key] = ast.literal_eval(value)
    if not args.skip_exact:
        exact_timings(args.maps)
    if args.throughput_steps:
        throughput(settings, args.maps[:1], args.throughput_steps, rounds=1)
    for name in args.maps:
        steps, stretch = BUDGETS[name]
        steps, stretch = args.steps or steps, args.stretch or stretch
        kwargs = {**settings, **{k: int(settings[k] * stretch) for k in STAGE_KEYS}, **MAP_SETTINGS.get(name, {}),
                  **overrides}
        report_header(name)
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            venv = make_vec_env("AssistGrid-v0", n_envs=args.n_envs, env_kwargs={"map_name": name}, seed=seed)
            model = Phase2("MlpPolicy", venv, seed=seed, **kwargs)
            sol = solve(model.prior, model.config)
            clock = EvaluationClock(sol, args.eval_every)
            model.learn(steps, callback=clock)
            report_row(seed, evaluate(model, sol), clock.first_within, clock.train_cpu(), steps)


if __name__ == "__main__":
    main()
