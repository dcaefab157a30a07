"""PPO -> TD3 hand-over on the lattice (stage-1 lattice, four agents) through the curriculum runner.

Per seed, two (three) curriculum runs on the 8x8x5 lattice of stage1_small.yaml (n_swarm 4):

* ``handoff``     : stage 1 PPO (the stage file's settings, a reduced budget), then stage 2 ``algo: td3``
  on the same lattice: its buffer seeded from stage 1's recorded transitions, its actor distilled,
  its critic warmed up on the recorded returns (``handoff:`` defaults);
* ``distil only`` : (``--distil-only``) the same with ``handoff: {critic_warmup_steps: 0}``, the
  hand-over before the warm-up;
* ``cold``        : the same TD3 stage alone, from scratch.

Reported: the TD3 stage's evaluation curve (``eval/mean_reward`` of its RunArtifacts, 5
deterministic episodes, ``--eval-episodes``) and the steps it takes to reach the PPO stage's final
evaluation reward; at the end, per evaluation step, the mean over seeds of the hand-over run's
reward minus the cold run's, with its standard error.

    nice -n 10 python benchmarks/bench_handoff_lattice.py --seeds 3
    nice -n 10 python benchmarks/bench_handoff_lattice.py --seeds 6 --first-seed 3 --eval-episodes 10
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch as th

from sb3_ext.curriculum.config import DEFAULT_CONFIG_DIR, load_stage_configs, stage_config_from_dict
from sb3_ext.curriculum.presets import override
from sb3_ext.curriculum.runner import CurriculumRunner
from sb3_ext.curriculum.state import RunState

TD3_SETTINGS = {"learning_rate": 1e-3, "learning_starts": 100, "buffer_size": 50_000, "batch_size": 128,
                "gamma": 0.98, "policy_kwargs": {"net_arch": [64, 64]}}


def stages(ppo_steps: int, td3_steps: int) -> tuple[Any, Any, Any]:
    """The PPO stage, the TD3 stage, and the TD3 stage without critic warm-up."""
    four_agents = {"total_timesteps": ppo_steps, "n_envs": 4, "environment": {"agents": {"mode": "fixed"}}}
    ppo = override(load_stage_configs(DEFAULT_CONFIG_DIR)[1], four_agents, "bench")
    td3 = ppo.to_dict()
    del td3["ppo"]
    td3.update(total_timesteps=td3_steps, n_envs=1, algo="td3", td3=dict(TD3_SETTINGS))
    distil_only = {**td3, "handoff": {"critic_warmup_steps": 0}}
    return ppo, stage_config_from_dict(td3, "bench td3 stage"), stage_config_from_dict(distil_only, "bench td3 stage")


def run(root: Path, name: str, configs: dict[int, Any], seed: int, eval_freq: int, eval_episodes: int) -> RunState:
    state = RunState(root / name, seed=seed, preset=None, configs=configs)
    state.run_dir.mkdir()
    with contextlib.redirect_stdout(io.StringIO()):
        CurriculumRunner(state, progress=False, eval_episodes=eval_episodes, subprocesses=False,
                         eval_freq=eval_freq).run(sorted(configs))
    return state


def curve(state: RunState, stage: int) -> list[tuple[int, float]]:
    evaluations = json.loads((state.stage_dir(stage) / "metrics.json").read_text())["eval/mean_reward"]
    return list(zip(evaluations["steps"], evaluations["values"], strict=False))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first-seed", type=int, default=0, help="seeds first-seed .. first-seed + seeds - 1")
    parser.add_argument("--eval-episodes", type=int, default=5, help="deterministic episodes per evaluation")
    parser.add_argument("--ppo-steps", type=int, default=24_000)
    parser.add_argument("--td3-steps", type=int, default=6_000)
    parser.add_argument("--eval-freq", type=int, default=1_000)
    parser.add_argument("--distil-only", action="store_true", help="also run the hand-over without critic warm-up")
    args = parser.parse_args()
    th.set_num_threads(1)
    ppo, td3, distil_only = stages(args.ppo_steps, args.td3_steps)
    print(f"lattice 8x8x5, 4 agents: PPO {args.ppo_steps} steps -> TD3 {args.td3_steps} steps vs TD3 cold", flush=True)
    reached: dict[str, list] = {name: [] for name in ("handoff", "cold", "distil only")[: 3 if args.distil_only else 2]}
    gaps: list[list[float]] = []  # per seed, hand-over minus cold at each evaluation step
    with tempfile.TemporaryDirectory() as root:
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            handoff = run(Path(root), f"handoff{seed}", {1: ppo, 2: td3}, seed, args.eval_freq, args.eval_episodes)
            cold = run(Path(root), f"cold{seed}", {1: td3}, seed, args.eval_freq, args.eval_episodes)
            summary = json.loads((handoff.run_dir / "summary.json").read_text())["stages"]
            target = summary["1"]["policy"]["mean_reward"]
            report = json.loads((handoff.stage_dir(2) / "handoff.json").read_text())
            curves = {"handoff": curve(handoff, 2), "cold": curve(cold, 1)}
            if args.distil_only:
                distilled = run(Path(root), f"distil{seed}", {1: ppo, 2: distil_only}, seed, args.eval_freq,
                                args.eval_episodes)
                curves["distil only"] = curve(distilled, 2)
            gaps.append([h - c for (_, h), (_, c) in zip(curves["handoff"], curves["cold"], strict=False)])
            cells = []
            for name, points in curves.items():
                step = next((s for s, v in points if v >= target), None)
                reached[name].append(step)
                cells.append(f"{name}: reaches {step if step is not None else 'no'}; curve "
                             + " ".join(f"{v:.2f}" for _, v in points))
            print(f"seed {seed}: PPO stage reward {target:.3f}; distillation agreement {report['agreement']:.2f}, "
                  f"{report['transitions_seeded']} seeded; critic warm-up {json.dumps(report['critic_warmup'])}\n   "
                  + "\n   ".join(cells), flush=True)
    for name, steps in reached.items():
        print(f"{name}: median steps to the PPO stage's reward "
              f"{np.median([s if s is not None else args.td3_steps for s in steps]):.0f}, reached on "
              f"{sum(s is not None for s in steps)}/{len(steps)} (misses counted as the budget)")
    length = min(len(row) for row in gaps)
    table = np.array([row[:length] for row in gaps])
    error = table.std(axis=0, ddof=1) / np.sqrt(len(table)) if len(table) > 1 else np.full(length, np.nan)
    print("hand-over minus cold per evaluation, mean over seeds +- standard error: "
          + " ".join(f"{m:+.2f}+-{e:.2f}" for m, e in zip(table.mean(axis=0), error, strict=True)))


if __name__ == "__main__":
    main()
