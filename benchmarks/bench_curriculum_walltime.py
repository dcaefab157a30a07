"""Wall time of the whole curriculum, per stage, next to plain SB3 PPO on the old four-agent setup.

Ours: the curriculum runner (``train_policy.py --stage all``: evaluations, checkpoints, ESS guard,
logs, manifests) over all three stages with the shipped stage files (agents on every column, one
VecEnv slot per agent), with SubprocVecEnv (``--vec-env dummy`` for DummyVecEnv). Its steps are
agent-steps; the table also gives lattice steps/s (agent-steps / agents per lattice).
SB3: plain ``PPO("MlpPolicy").learn`` on the old four-agent setup (``agents.mode: fixed``,
``LatticeGrowth-v0``) with the settings its stage files had (n_steps 256 / 2048 / 2048, 8 / 8 / 4
envs, minibatch 64, 10 epochs), no callbacks, for ``--sb3-steps`` steps per stage, once with
SubprocVecEnv and once with DummyVecEnv. The target is the curriculum's total wall time: < 30 min
at the full budgets.

``--budget-fraction F`` runs every stage for a share F of its budget (at least one rollout) and
also prints the full budgets' wall time *projected* from the measured rates: per stage, its
training time per step x budget, plus what the stage spent outside ``learn`` (start, final
evaluation, manifest), which does not grow with the budget. It is an estimate, printed as such,
not a measurement.

    python benchmarks/bench_curriculum_walltime.py            # full budgets
    python benchmarks/bench_curriculum_walltime.py --budget-fraction 0.05   # 5%, projected total
    python benchmarks/bench_curriculum_walltime.py --quick    # --preset quick budgets
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from stable_baselines3 import PPO

from sb3_ext.curriculum.config import DEFAULT_CONFIG_DIR, load_stage_configs
from sb3_ext.curriculum.envs import make_training_env
from sb3_ext.curriculum.presets import apply_preset_to_stages, override
from sb3_ext.curriculum.runner import CurriculumRunner, new_run_dir
from sb3_ext.curriculum.state import RunState
from sb3_ext.curriculum.transfer import ppo_kwargs
from sb3_ext.envs.lattice.swarm_env import agents_for

CONFIGS = DEFAULT_CONFIG_DIR
#: What the stage files set for the four-agent setup before the per-column swarm became the default.
OLD_SETUP: dict[int, dict] = {
    1: {"n_envs": 8, "ppo": {"n_steps": 256, "batch_size": 64, "n_epochs": 10, "gamma": 0.99, "gae_lambda": 0.95}},
    2: {"n_envs": 8, "ppo": {"n_steps": 2048, "batch_size": 64, "n_epochs": 10, "gamma": 0.99, "gae_lambda": 0.95}},
    3: {"n_envs": 4, "ppo": {"n_steps": 2048, "batch_size": 64, "n_epochs": 10, "gamma": 0.99, "gae_lambda": 0.95}},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="use the --preset quick budgets")
    parser.add_argument(
        "--budget-fraction", type=float, default=1.0, help="share of each stage's budget ours runs (<1: projected totals)"
    )
    parser.add_argument("--sb3-steps", type=int, default=16_384, help="steps plain SB3 PPO runs per stage and VecEnv")
    parser.add_argument("--vec-env", choices=["subproc", "dummy"], default="subproc", help="VecEnv of our run")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=Path, default=Path(tempfile.gettempdir()) / "bench_curriculum_walltime")
    args = parser.parse_args()
    torch.set_num_threads(1)

    configs = load_stage_configs(CONFIGS)
    if args.quick:
        configs = apply_preset_to_stages("quick", configs)
    budgets = {stage: config.total_timesteps for stage, config in configs.items()}
    if args.budget_fraction < 1.0:
        configs = {
            stage: override(
                config,
                {"total_timesteps": max(config.ppo.n_steps * config.n_envs, int(budgets[stage] * args.budget_fraction))},
                "--budget-fraction",
            )
            for stage, config in configs.items()
        }

    state = RunState(new_run_dir(args.output), args.seed, "quick" if args.quick else None, configs)
    start = time.perf_counter()
    CurriculumRunner(state, progress=False, eval_episodes=5, subprocesses=args.vec_env == "subproc").run([1, 2, 3])
    total = time.perf_counter() - start
    summary = json.loads((state.run_dir / "summary.json").read_text())

    sb3_rate: dict[tuple[int, bool], float] = {}
    for stage, config in configs.items():
        old = override(config, {"environment": {"agents": {"mode": "fixed"}}, **OLD_SETUP[stage]}, "four-agent setup")
        steps = max(old.ppo.n_steps * old.n_envs, args.sb3_steps)
        for subprocesses in (True, False):
            env = make_training_env(old, old.n_envs, seed=args.seed, subprocesses=subprocesses)
            model = PPO("MlpPolicy", env, seed=args.seed, device="cpu", **ppo_kwargs(old.ppo))
            begin = time.perf_counter()
            model.learn(steps)
            sb3_rate[stage, subprocesses] = model.num_timesteps / (time.perf_counter() - begin)
            env.close()

    print(f"\ncurriculum {'(quick preset)' if args.quick else '(full budgets)'}, ours with {args.vec_env}: {state.run_dir}")
    print(f"load {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    print(
        f"{'stage':<7}{'lattice':<11}{'envs':>5}{'agent-steps':>12}{'wall s':>9}{'train s':>9}{'agent-steps/s':>15}"
        f"{'lattice steps/s':>16}{'4-agent SB3 subproc':>20}{'4-agent SB3 dummy':>18}{'projected s':>13}"
    )
    all_steps, projected_total = 0, 0.0
    for stage, row in summary["stages"].items():
        config = configs[int(stage)]
        all_steps += row["steps"]
        projected = row["wall_time_s"] - row["train_time_s"] + row["train_time_s"] / row["steps"] * budgets[int(stage)]
        projected_total += projected
        agents = (
            agents_for(config.environment.lattice_size, config.environment.agents.density)
            if config.environment.per_column
            else 1
        )
        print(
            f"{stage:<7}{'x'.join(map(str, row['lattice_size'])):<11}{config.n_envs:>5}"
            f"{row['steps']:>12}{row['wall_time_s']:>9.0f}"
            f"{row['train_time_s']:>9.0f}{row['steps_per_s']:>15.0f}{row['steps_per_s'] / agents:>16.1f}"
            f"{sb3_rate[int(stage), True]:>20.0f}{sb3_rate[int(stage), False]:>18.0f}{projected:>13.0f}"
        )
    print(
        f"measured: {all_steps} steps in {total:.0f} s ({total / 60:.1f} min) including evaluations, checkpoints and manifests"
    )
    if args.budget_fraction < 1.0:
        print(
            f"PROJECTED (not measured) for the full budgets, {sum(budgets.values())} steps: {projected_total:.0f} s "
            f"({projected_total / 60:.1f} min), from each stage's measured training time per step"
        )


if __name__ == "__main__":
    main()
