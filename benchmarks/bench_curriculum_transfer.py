"""Does stage 2 learn faster from stage 1's final model than from scratch?

Side by side in one process, on the stage-2 lattice (20x20x10) with stage 2's PPO settings:

- transfer: ``load_for_stage(stage1_final.zip)``, the curriculum's stage-to-stage step;
- scratch: a fresh PPO model.

Both train the same number of steps; every ``--eval-every`` steps each is evaluated
deterministically on the same seeds, by the final roughness W at the neutral films' final height
(equal thickness). The target W is halfway between neutral physics' and the best evaluation either
arm reached; the table gives the steps each arm needed to first reach it (fewer is better), and
the evaluation curves.

    python benchmarks/bench_curriculum_transfer.py --stage1-model RUN/stage1/stage1_final.zip
    python benchmarks/bench_curriculum_transfer.py --quick    # trains a quick stage 1 first
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sb3_ext.curriculum.config import DEFAULT_CONFIG_DIR, StageConfig, load_stage_configs
from sb3_ext.curriculum.envs import make_training_env
from sb3_ext.curriculum.evaluation import evaluate
from sb3_ext.curriculum.presets import apply_preset_to_stages
from sb3_ext.curriculum.runner import CurriculumRunner, new_run_dir
from sb3_ext.curriculum.state import RunState
from sb3_ext.curriculum.transfer import load_for_stage, new_model
from sb3_ext.envs.lattice.heuristics import NeutralPolicy

CONFIGS = DEFAULT_CONFIG_DIR


def learning_curve(
    model, config: StageConfig, steps: int, eval_every: int, episodes: int, seed: int, height: float
) -> list[tuple[int, float]]:
    """(steps trained on stage 2, mean deterministic final W at ``height``), starting untrained."""
    start = model.num_timesteps

    def roughness() -> float:
        return evaluate(model, config, episodes, seed=seed, stop_height=height).final_roughness

    curve = [(0, roughness())]
    while model.num_timesteps - start < steps:
        model.learn(eval_every, reset_num_timesteps=False)
        curve.append((model.num_timesteps - start, roughness()))
    return curve


def first_reaching(curve: list[tuple[int, float]], target: float) -> int | None:
    return next((step for step, w in curve if w <= target), None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage1-model", type=Path, help="stage 1 final model (default: train one first)")
    parser.add_argument("--quick", action="store_true", help="quick-preset stage 1 and stage-2 arms of 51k agent-steps")
    parser.add_argument("--steps", type=int, default=256_000, help="stage-2 agent-steps per arm (default 256k)")
    parser.add_argument("--eval-every", type=int, default=25_600)
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=Path, default=Path(tempfile.gettempdir()) / "bench_curriculum_transfer")
    args = parser.parse_args()
    torch.set_num_threads(1)

    configs = load_stage_configs(CONFIGS)
    if args.quick:
        configs = apply_preset_to_stages("quick", configs)
        args.steps, args.eval_every = min(args.steps, 51_200), min(args.eval_every, 12_800)
    stage1_model = args.stage1_model
    if stage1_model is None:
        state = RunState(new_run_dir(args.output), args.seed, "quick" if args.quick else None, configs)
        CurriculumRunner(state, progress=False, eval_episodes=5).run([1])
        stage1_model = state.final_model(1)
    config = configs[2]
    eval_seed = 20_000 + args.seed
    neutral = evaluate(NeutralPolicy(config.environment.patch_radius), config, args.episodes, seed=eval_seed)

    curves, times = {}, {}
    for arm in ("transfer from stage 1", "from scratch"):
        env = make_training_env(config, config.n_envs, seed=args.seed + 2000)
        if arm == "from scratch":
            model = new_model(config.ppo, env, seed=args.seed + 2000, device="cpu")
        else:
            model = load_for_stage(stage1_model, env, config.ppo, device="cpu")
            model.set_random_seed(args.seed + 2000)
        start = time.perf_counter()
        curves[arm] = learning_curve(model, config, args.steps, args.eval_every, args.episodes, eval_seed, neutral.mean_height)
        times[arm] = time.perf_counter() - start
        env.close()

    best = min(w for curve in curves.values() for _, w in curve)
    target = neutral.final_roughness - 0.5 * (neutral.final_roughness - best)
    print(f"\nstage 2 (20x20x10): {args.steps} steps per arm, eval every {args.eval_every} steps on {args.episodes} episodes")
    print(
        f"neutral W {neutral.final_roughness:.3f} at height {neutral.mean_height:.2f}; best reached {best:.3f}; "
        f"target (halfway) {target:.3f}"
    )
    print(f"{'arm':<24}{'steps to target':>16}{'W at 0':>9}{'final W':>9}{'wall s':>8}")
    for arm, curve in curves.items():
        reached = first_reaching(curve, target)
        print(
            f"{arm:<24}{'not reached' if reached is None else reached:>16}"
            f"{curve[0][1]:>9.3f}{curve[-1][1]:>9.3f}{times[arm]:>8.0f}"
        )
    print("\ncurves (steps: W transfer / W scratch):")
    for (step, with_transfer), (_, scratch) in zip(curves["transfer from stage 1"], curves["from scratch"], strict=True):
        print(f"  {step:>8}: {with_transfer:8.3f} / {scratch:8.3f}")


if __name__ == "__main__":
    main()
