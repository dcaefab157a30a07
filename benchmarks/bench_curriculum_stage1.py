"""Stage 1 at its full budget: does the trained policy grow smoother films than physics alone?

Side by side in one process, on the stage-1 lattice (8x8x5, 600 K), with the stage file's PPO
settings and budget:

- ours: the curriculum runner, as ``train_policy.py --stage 1`` runs it (PPO with SB3's MlpPolicy,
  evaluations, checkpoints, ESS guard, logs);
- SB3: plain ``PPO("MlpPolicy").learn`` on the same environments and settings, no callbacks (the
  same algorithm: the control that the runner's machinery changes neither learning nor speed);
- references: the neutral policy (exact KMC, ESS 1) and the hand-written "deposit in valleys,
  hop downhill" heuristic.

Every policy is evaluated deterministically on the same seeds. The table gives the final
roughness W, its ratio to neutral, the deposited thickness (mean height) and the mean ESS: a
lower W only counts at a comparable thickness (within 10% of neutral) and ESS >= 0.3.

    python benchmarks/bench_curriculum_stage1.py            # full budget (100k steps per policy)
    python benchmarks/bench_curriculum_stage1.py --quick    # the --preset quick budget
    python benchmarks/bench_curriculum_stage1.py --model RUN/stage1/stage1_final.zip  # reuse a run
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from stable_baselines3 import PPO

from sb3_ext.curriculum.config import DEFAULT_CONFIG_DIR, load_stage_configs
from sb3_ext.curriculum.envs import make_training_env
from sb3_ext.curriculum.evaluation import evaluate
from sb3_ext.curriculum.presets import apply_preset_to_stages
from sb3_ext.curriculum.runner import CurriculumRunner, new_run_dir
from sb3_ext.curriculum.state import RunState
from sb3_ext.curriculum.transfer import ppo_kwargs
from sb3_ext.envs.lattice.heuristics import NeutralPolicy, ValleyDownhillPolicy

CONFIGS = DEFAULT_CONFIG_DIR


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="use the --preset quick budget")
    parser.add_argument("--model", type=Path, help="stage-1 final model of a finished run, instead of training ours here")
    parser.add_argument("--episodes", type=int, default=100, help="evaluation episodes per policy")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=Path, default=Path(tempfile.gettempdir()) / "bench_curriculum_stage1")
    args = parser.parse_args()
    torch.set_num_threads(1)

    configs = load_stage_configs(CONFIGS)
    if args.quick:
        configs = apply_preset_to_stages("quick", configs)
    config = configs[1]

    # ours: the curriculum runner, exactly as train_policy.py --stage 1 runs it
    ours_time, ours_path = None, args.model
    if ours_path is None:
        state = RunState(new_run_dir(args.output), args.seed, "quick" if args.quick else None, configs)
        start = time.perf_counter()
        CurriculumRunner(state, progress=False, eval_episodes=5).run([1])
        ours_time, ours_path = time.perf_counter() - start, state.final_model(1)
    ours = PPO.load(ours_path, device="cpu")

    # SB3: plain PPO with an MLP policy, same environments, settings and budget
    env = make_training_env(config, config.n_envs, seed=args.seed + 1000)
    start = time.perf_counter()
    sb3 = PPO("MlpPolicy", env, seed=args.seed + 1000, device="cpu", **ppo_kwargs(config.ppo)).learn(config.total_timesteps)
    sb3_time = time.perf_counter() - start
    env.close()

    rows = {
        "neutral (exact KMC)": (NeutralPolicy(), None),
        "valley/downhill heuristic": (ValleyDownhillPolicy(), None),
        "SB3 PPO.learn, no runner": (sb3, sb3_time),
        "ours: curriculum stage 1": (ours, ours_time),
    }
    results = {name: evaluate(policy, config, args.episodes, seed=10_000 + args.seed) for name, (policy, _) in rows.items()}
    neutral = results["neutral (exact KMC)"]
    budget = config.total_timesteps
    print(f"\nstage 1 (8x8x5, 600 K), {budget} training steps per policy, {args.episodes} evaluation episodes (same seeds)")
    print(
        f"{'policy':<28}{'W':>8}{'W/neutral':>11}{'height':>8}{'h/neutral':>11}"
        f"{'coverage':>10}{'ESS':>7}{'reward':>9}{'train s':>9}"
    )
    for name, result in results.items():
        seconds = rows[name][1]
        print(
            f"{name:<28}{result.final_roughness:>8.3f}{result.final_roughness / neutral.final_roughness:>11.3f}"
            f"{result.mean_height:>8.2f}{result.mean_height / neutral.mean_height:>11.3f}{result.final_coverage:>10.3f}"
            f"{result.mean_ess:>7.3f}{result.mean_reward:>9.2f}{'-' if seconds is None else f'{seconds:.0f}':>9}"
        )
    sem = neutral.final_roughness_std / np.sqrt(args.episodes)
    print(f"standard error of a W mean: about {sem:.3f}; ours: {ours_path}")


if __name__ == "__main__":
    main()
