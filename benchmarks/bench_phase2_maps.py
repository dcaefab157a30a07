"""Phase 2 at scale: the exact solver on the large maps and a 10,000-state world, then Phase2
learning each map against its exact solution (``evaluate``), side by side with SB3's DQN.

For every map and seed, Phase2 trains with ``sb3_ext/hyperparams/phase2.yml``'s settings, its
warm-up stretched by the map's factor (``sb3_ext.zoo.phase2_maps``), on ``--n-envs`` copies of the env. Every
``--eval-every`` env steps the model is checked with :func:`sb3_ext.phase2.evaluation.evaluate`
(values within 5% of exact on the states the exact soft AND greedy robots visit, greedy = exact
there, and every human goal's reach probability under the learned greedy robot within 0.05 of
the range exact greedy robots span); the clocks are paused while checking, so the time to that
point is pure training time (this process's CPU seconds). Throughput is compared with a DQN of the
same batch size and network on the same world, in the same process: both with one update per
four env steps (DQN: one env, ``train_freq=4``, its default; Phase2: four envs, ``train_freq=1``),
and both with one env and one update per step. With ``--set weight_averaging_tau=...`` each seed
gets two rows from the same run: its online weights at the end of training, and the averaged
weights the model keeps; ``--extra-taus`` adds a row per further averaging rate, kept alongside.

    python benchmarks/bench_phase2_maps.py                              # every map, 3 seeds
    python benchmarks/bench_phase2_maps.py --maps rock rocks --seeds 1  # a subset
    python benchmarks/bench_phase2_maps.py --maps rocks two_humans --sensitivity  # V_h^e under Q_r errors
"""

from __future__ import annotations

import argparse
import os
import time

import gymnasium as gym
import numpy as np
import torch as th
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.env_util import make_vec_env

import sb3_ext  # noqa: F401  (registers AssistGrid-v0)
from settings_args import parse_settings
from bench_phase2_rock import throughput  # the side-by-side DQN comparison, one map
from sb3_ext.envs.assist import MAPS
from sb3_ext.phase2 import Phase2
from sb3_ext.phase2.averaging import WeightAverage
from sb3_ext.phase2.config import FULL_STAGE
from sb3_ext.phase2.evaluation import Evaluation, evaluate, learned_values, range_gap, robot_policies, visited_states
from sb3_ext.phase2.exact import greedy_probs, greedy_reach_bounds, occupancy, reach_probabilities, solve
from sb3_ext.phase2.power import PowerParams, power_law_log_probs
from sb3_ext.zoo.config import read_zoo_entry
from sb3_ext.zoo.phase2_maps import MAP_BUDGETS, phase2_map_settings


class EvaluationClock(BaseCallback):
    """Runs ``evaluate`` every ``every`` env steps; keeps the training CPU time net of that.

    With ``extra_taus`` it also keeps one weight average per rate, updated as Phase2 updates its
    own (after every gradient step of the full stage), and evaluates each at the end: several
    averaging rates measured on one training run.
    """

    def __init__(self, sol, every: int, extra_taus: tuple[float, ...] = ()):
        super().__init__()
        self.sol, self.every, self.next_check = sol, every, every
        self.eval_cpu = self.eval_wall = 0.0
        self.first_within: tuple[int, float] | None = None  # (env steps, CPU s)
        self.online: Evaluation | None = None  # with weight averaging: the online weights' evaluation
        self.extra_taus = extra_taus
        self.extra: dict[float, Evaluation] = {}

    def _on_training_start(self) -> None:
        self.start_cpu, self.start_wall = time.process_time(), time.perf_counter()
        nets = self.model.policy.nets
        self.averages = {tau: WeightAverage(nets, tau) for tau in self.extra_taus}
        if self.averages:
            self.hook = self.model.policy.optimizer.register_step_post_hook(lambda *_: self._update_averages())

    def _update_averages(self) -> None:
        if self.model.config.stage(self.model.num_timesteps) == FULL_STAGE:
            for average in self.averages.values():
                average.update(self.model.policy.nets)

    def _on_step(self) -> bool:
        if self.num_timesteps >= self.next_check:
            self.next_check += self.every
            cpu, wall = time.process_time(), time.perf_counter()
            within = evaluate(self.model, self.sol).within()
            self.eval_cpu += time.process_time() - cpu
            self.eval_wall += time.perf_counter() - wall
            if within and self.first_within is None:
                self.first_within = (self.num_timesteps, self.train_cpu())
        return True

    def _on_training_end(self) -> None:
        # Phase2 swaps its averaged weights in after this: the same run measures both.
        if self.model.weight_average is None and not self.averages:
            return
        cpu, wall = time.process_time(), time.perf_counter()
        if self.model.weight_average is not None:
            self.online = evaluate(self.model, self.sol)
        if self.averages:
            self.hook.remove()
            nets = self.model.policy.nets
            online = [p.detach().clone() for p in nets.parameters()]
            for tau, average in self.averages.items():
                average.copy_to(nets)
                self.extra[tau] = evaluate(self.model, self.sol)
            with th.no_grad():
                for param, saved in zip(nets.parameters(), online, strict=True):
                    param.copy_(saved)
        self.eval_cpu += time.process_time() - cpu
        self.eval_wall += time.perf_counter() - wall

    def train_cpu(self) -> float:
        return time.process_time() - self.start_cpu - self.eval_cpu

    def train_wall(self) -> float:
        return time.perf_counter() - self.start_wall - self.eval_wall


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
        beta_r = MAP_BUDGETS[name].settings.get("beta_r", 10.0)
        margins = f"{first_move_margin(sol):.1e}"
        if beta_r != 10.0:
            margins += f", beta_r {beta_r:g}: {first_move_margin(solve(prior, PowerParams(beta_r=beta_r))):.1e}"
        print(f"{line}; first-move margin {margins}", flush=True)


def sensitivity(map_names: list[str], noises: tuple[float, ...] = (0.002, 0.005, 0.01, 0.02, 0.03),
                draws: int = 3) -> None:
    """How far the exact V_h^e moves when pi_r is computed from a slightly wrong Q_r.

    Every non-terminal state's exact Q_r is multiplied by exp(u), u drawn uniformly in
    [-noise, noise] for each move independently (a relative Q_r error of about ``noise``), the
    power-law policy is recomputed from it at the map's beta_r, and the exact V_h^e of that robot is
    compared with the exact solution's on the states both exact robots visit, as ``evaluate``
    compares learned values. This is the error a learner whose Q_r is that accurate makes in V_h^e
    even if its V_h^e network fitted its own robot perfectly.
    """
    print("\nexact V_h^e under pi_r computed from Q_r with relative noise: worst relative error "
          f"(floor 0.1) over {draws} draws, on the states both exact robots visit")
    rng = np.random.default_rng(0)
    for name in map_names:
        prior = gym.make("AssistGrid-v0", map_name=name).unwrapped.prior
        params = PowerParams(beta_r=MAP_BUDGETS[name].settings.get("beta_r", 10.0))
        sol = solve(prior, params)
        terminal = prior.world.is_terminal
        greedy = {s: greedy_probs(q) for s, q in sol.q_r.items()}
        states = list(dict.fromkeys(visited_states(occupancy(prior, sol), terminal)
                                    + visited_states(occupancy(prior, sol, greedy), terminal)))
        exact = np.stack([sol.v_h_e[s] for s in states])
        cells = []
        for noise in noises:
            worst = []
            for _ in range(draws):
                probs = {}
                for s, q in sol.q_r.items():
                    noisy = th.as_tensor(q * np.exp(rng.uniform(-noise, noise, q.shape)))
                    probs[s] = th.exp(power_law_log_probs(noisy, params.beta_r)).numpy()
                moved = solve(prior, params, sol.states[0], robot_probs=probs)
                err = np.abs(np.stack([moved.v_h_e[s] for s in states]) - exact) / np.maximum(exact, 0.1)
                worst.append(err.max())
            cells.append(f"Q_r noise {noise:g}: {min(worst):.3f}-{max(worst):.3f}")
        print(f"  {name} (beta_r {params.beta_r:g}, {len(states)} states): " + ", ".join(cells), flush=True)


def error_distribution(model, sol) -> None:
    """Where the V_h^e error sits: over the (state, goal) pairs of the states both exact robots
    visit, the share above 5% and the worst error by band of the exact value."""
    prior = model.prior
    terminal = prior.world.is_terminal
    greedy = {s: greedy_probs(q) for s, q in sol.q_r.items()}
    states = list(dict.fromkeys(visited_states(occupancy(prior, sol), terminal)
                                + visited_states(occupancy(prior, sol, greedy), terminal)))
    exact = np.stack([sol.v_h_e[s] for s in states])
    absolute = np.abs(learned_values(model, states, ("v_h_e",))["v_h_e"] - exact)
    relative = absolute / np.maximum(exact, 0.1)  # as evaluate() measures it
    bands = []
    for lo, hi in ((0.0, 0.01), (0.01, 0.1), (0.1, 0.3), (0.3, 0.7), (0.7, 1.0)):
        band = (exact >= lo) & ((exact < hi) if hi < 1.0 else (exact <= hi))
        if band.any():
            bands.append(f"[{lo:g}, {hi:g}{']' if hi == 1.0 else ')'}: {band.sum()} pairs, worst {relative[band].max():.3f} "
                         f"(abs {absolute[band].max():.3f}), {np.mean(relative[band] > 0.05):.1%} above 5%")
    print(f"      V_h^e over {relative.size} (state, goal) pairs: {np.mean(relative > 0.05):.1%} above 5%; relative "
          f"error median / 90% / 99% / max {' / '.join(f'{q:.3f}' for q in np.quantile(relative, [0.5, 0.9, 0.99, 1]))}, "
          f"absolute max {absolute.max():.3f}; by exact value: " + "; ".join(bands), flush=True)


def near_ties(model, sol, evaluation: Evaluation, tolerances: tuple[float, ...] = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2)) -> None:
    """Whether a reach gap comes from moves the exact Q_r ranks by a hair.

    Prints the states the learned greedy robot reaches (probability >= 1e-3) where its move is not
    an exact best one, with the move's exact Q_r shortfall (relative, as the ties of ``evaluate``
    are measured); the learned greedy robot's reach gap against the range of greedy robots that may
    take any move within each of ``tolerances`` of the best; and its gap when its moves at the
    states where it falls short by at most that tolerance are replaced by the exact best move.
    """
    prior = model.prior
    learned = robot_policies(model, sol)["learned_greedy"]
    visits = occupancy(prior, sol, learned)
    shortfall = {}
    for state, probs in learned.items():
        q = sol.q_r[state]
        shortfall[state] = (q.max() - q[int(np.argmax(probs))]) / np.abs(q).max()
    off = sorted((s for s in learned if shortfall[s] > 1e-9 and visits.get(s, 0.0) >= 1e-3),
                 key=lambda s: -visits[s])
    print(f"      learned greedy off the exact best at {len(off)} states it reaches (p >= 1e-3): "
          + ", ".join(f"p {visits[s]:.3f} short {shortfall[s]:.1e}" for s in off), flush=True)

    reach = evaluation.reach["learned_greedy"]
    strict_lo, strict_hi = evaluation.greedy_reach_lo, evaluation.greedy_reach_hi
    cells = []
    for tol in tolerances:
        lo, hi = greedy_reach_bounds(prior, sol, tol)
        mended = {s: greedy_probs(sol.q_r[s]) if 1e-9 < shortfall[s] <= tol else p for s, p in learned.items()}
        cells.append(f"tol {tol:g}: gap to the range {range_gap(reach, lo, hi):.3f}, with those moves mended "
                     f"{range_gap(reach_probabilities(prior, sol, mended), strict_lo, strict_hi):.3f}")
    print("      reach gap of the learned greedy robot, " + "; ".join(cells), flush=True)


def report_header(name: str) -> None:
    print(f"\n{name}: seed | soft-visited states: V_h^e X_h Q_r err, greedy=exact | greedy-visited: same | "
          "vs exact values of the learned soft robot: V_h^e X_h Q_r err | reach gap | "
          "mean reach: learned greedy / exact greedy / uniform | within | to within: steps, CPU s | "
          "training CPU s, wall s | steps per CPU s | load average (1 min) at the end", flush=True)


def report_row(seed: int | str, e: Evaluation, clock: EvaluationClock, steps: int) -> None:
    """One seed's line, printed as soon as it is done (a long run keeps the seeds it finished)."""
    s, g, first, cpu = e.soft, e.greedy, clock.first_within, clock.train_cpu()
    to = f"{first[0]:>7d}, {first[1]:6.0f}" if first else f"{'never':>15}"
    print(f"  {seed} | {s.v_h_e:.3f} {s.x_h:.3f} {s.q_r:.3f}, {s.greedy_agreement:.2f} | "
          f"{g.v_h_e:.3f} {g.x_h:.3f} {g.q_r:.3f}, {g.greedy_agreement:.2f} | "
          f"{e.own.v_h_e:.3f} {e.own.x_h:.3f} {e.own.q_r:.3f} | {e.reach_gap:.3f} | "
          f"{e.reach['learned_greedy'].mean():.3f} / {e.reach['exact_greedy'].mean():.3f} / "
          f"{e.reach['uniform'].mean():.3f} | {'yes' if e.within() else 'no':>3} | {to} | "
          f"{cpu:6.0f}, {clock.train_wall():6.0f} | {steps / cpu:6.0f} | {os.getloadavg()[0]:.1f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--maps", nargs="+", default=list(MAP_BUDGETS), choices=sorted(MAP_BUDGETS))
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=None, help="env steps per run (default: the map's budget)")
    parser.add_argument("--n-envs", type=int, default=4)
    parser.add_argument("--eval-every", type=int, default=10_000)
    parser.add_argument("--throughput-steps", type=int, default=6000)
    parser.add_argument("--skip-exact", action="store_true")
    parser.add_argument("--detail", action="store_true",
                        help="after each seed, print where the V_h^e error sits (by band of the exact value)")
    parser.add_argument("--near-ties", action="store_true",
                        help="after each seed, print whether its reach gap comes from moves exact Q_r ranks by a hair")
    parser.add_argument("--sensitivity", action="store_true",
                        help="only print how far exact V_h^e moves under small Q_r errors, for each map")
    parser.add_argument("--stretch", type=float, default=None, help="warm-up factor (default: the map's)")
    parser.add_argument("--extra-taus", nargs="*", type=float, default=[],
                        help="also evaluate weight averages at these rates, kept alongside the same run")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="Phase2 settings over the map's, e.g. directed_exploration=True beta_r=100.0")
    args = parser.parse_args()
    th.set_num_threads(1)
    settings = read_zoo_entry("phase2", "AssistGrid-v0").model_kwargs
    overrides = parse_settings(parser, "--set", args.set)
    if args.sensitivity:
        sensitivity(args.maps)
        return
    if not args.skip_exact:
        exact_timings(args.maps)
    if args.throughput_steps:
        throughput(settings, args.maps[:1], args.throughput_steps, rounds=1)
    for name in args.maps:
        steps = args.steps or MAP_BUDGETS[name].steps
        kwargs = {**phase2_map_settings(name, args.stretch), **overrides}
        report_header(name)
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            venv = make_vec_env("AssistGrid-v0", n_envs=args.n_envs, env_kwargs={"map_name": name}, seed=seed)
            model = Phase2("MlpPolicy", venv, seed=seed, **kwargs)
            sol = solve(model.prior, model.config)
            clock = EvaluationClock(sol, args.eval_every, tuple(args.extra_taus))
            model.learn(steps, callback=clock)
            if clock.online is not None:
                report_row(f"{seed} online weights", clock.online, clock, steps)
            for tau, result in clock.extra.items():
                report_row(f"{seed} averaged at tau {tau:g}", result, clock, steps)
            final = evaluate(model, sol)
            report_row(seed if model.weight_average is None else f"{seed} averaged weights (model's tau)",
                       final, clock, steps)
            if args.detail:
                error_distribution(model, sol)
            if args.near_ties:
                near_ties(model, sol, final)


if __name__ == "__main__":
    main()
