"""The curriculum's targets: every stage against the hand rule and neutral physics, and zero-shot
transfer of the final stage-3 policy to other lattices and temperatures.

Every row is ``sb3_ext.curriculum.evaluation.compare``: deterministic episodes on the same seeds
for the policy, neutral physics and the hand rule (each gain of ``HAND_RULE_GAINS``, the best one
at mean ESS >= 0.5 reported), with W read at the neutral films' final height (equal thickness).

    python benchmarks/bench_curriculum_targets.py --run experiments/training_runs/run_<time>
    python benchmarks/bench_curriculum_targets.py --models s1.zip s2.zip s3.zip   # shipped stage files

Targets checked at the end: each stage's W below the best hand rule's at mean ESS >= 0.5; stage 3 at
least 30% below neutral and no smaller a reduction than stage 1's; zero-shot (100x100x20 at 600 K,
50x50x20 at 550 K and 650 K) at least 25% below neutral at mean ESS >= 0.5.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from stable_baselines3 import PPO

from sb3_ext.curriculum.config import DEFAULT_CONFIG_DIR, StageConfig, load_stage_configs
from sb3_ext.curriculum.envs import evaluation_config
from sb3_ext.curriculum.evaluation import MIN_ESS, compare
from sb3_ext.curriculum.state import RunState

ZERO_SHOT: tuple[tuple[list[int] | None, float | None], ...] = (([100, 100, 20], None), (None, 550.0), (None, 650.0))


def reduction(result: dict[str, Any]) -> float:
    """Relative W reduction of the policy against neutral physics (0.3 = 30% smoother)."""
    return 1.0 - result["policy"]["final_roughness"] / result["neutral"]["final_roughness"]


def row(name: str, config: StageConfig, result: dict[str, Any], seconds: float) -> str:
    env = config.environment
    policy, hand, neutral = result["policy"], result["hand_rule"], result["neutral"]
    return (
        f"{name:<27}{'x'.join(map(str, env.lattice_size)):<11}{env.temperature:>6.0f}{policy['final_roughness']:>9.3f}"
        f"{hand['final_roughness']:>8.3f} ({hand['gain']:<5g}){neutral['final_roughness']:>10.3f}"
        f"{-100 * reduction(result):>+9.1f}%"
        f"{policy['mean_ess']:>7.3f}{hand['mean_ess']:>9.3f}{neutral['mean_height']:>8.2f}{seconds:>8.0f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--run", type=Path, help="a curriculum run folder (its stageN_final.zip and recorded stage files)")
    source.add_argument("--models", type=Path, nargs=3, metavar="ZIP", help="stage 1, 2, 3 models, on the shipped stage files")
    parser.add_argument("--episodes", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=Path, default=Path("bench_curriculum_targets.json"))
    args = parser.parse_args()
    torch.set_num_threads(1)

    if args.run is not None:
        state = RunState.load(args.run)
        configs, models = state.configs, {stage: state.final_model(stage) for stage in (1, 2, 3)}
    else:
        configs, models = load_stage_configs(DEFAULT_CONFIG_DIR), dict(zip((1, 2, 3), args.models, strict=True))

    print(f"load {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores; {args.episodes} episodes per row, seed {args.seed}")
    print(
        f"{'':<27}{'lattice':<11}{'T (K)':>6}{'W policy':>9}{'W hand (gain)':>16}{'W neutral':>10}{'vs neutral':>10}"
        f"{'ESS':>7}{'ESS hand':>9}{'height':>8}{'eval s':>8}"
    )
    results: dict[str, Any] = {}
    for stage in (1, 2, 3):
        model = PPO.load(models[stage], device="cpu")
        start = time.perf_counter()
        results[f"stage{stage}"] = compare(model, configs[stage], args.episodes, seed=args.seed)
        print(row(f"stage {stage}", configs[stage], results[f"stage{stage}"], time.perf_counter() - start), flush=True)
    for lattice, temperature in ZERO_SHOT:
        config = evaluation_config(configs[3], lattice, temperature)
        env = config.environment
        name = f"zero-shot {'x'.join(map(str, env.lattice_size))}@{env.temperature:g}K"
        start = time.perf_counter()
        results[name] = compare(model, config, args.episodes, seed=args.seed)
        print(row(name, config, results[name], time.perf_counter() - start), flush=True)

    print("\ntargets:")
    for stage in (1, 2, 3):
        r = results[f"stage{stage}"]
        ok = r["policy"]["final_roughness"] < r["hand_rule"]["final_roughness"] and r["policy"]["mean_ess"] >= MIN_ESS
        print(f"  stage {stage}: W below the best hand rule's at mean ESS >= {MIN_ESS}: {'yes' if ok else 'NO'}")
    print(
        f"  stage 3 at least 30% below neutral: {'yes' if reduction(results['stage3']) >= 0.3 else 'NO'} "
        f"({100 * reduction(results['stage3']):.1f}%)"
    )
    fades = reduction(results["stage3"]) < reduction(results["stage1"])
    print(f"  stage 3's reduction >= stage 1's: {'NO' if fades else 'yes'}")
    for name, r in results.items():
        if name.startswith("zero-shot"):
            ok = reduction(r) >= 0.25 and r["policy"]["mean_ess"] >= MIN_ESS
            print(
                f"  {name}: >= 25% below neutral at mean ESS >= {MIN_ESS}: {'yes' if ok else 'NO'} ({100 * reduction(r):.1f}%)"
            )
    args.output.write_text(json.dumps({"models": {s: str(m) for s, m in models.items()}, "results": results}, indent=1))
    print(f"written: {args.output}")


if __name__ == "__main__":
    main()
