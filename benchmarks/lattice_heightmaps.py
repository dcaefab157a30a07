"""Draw docs/lattice_heightmaps.png: films grown by neutral physics, by the best hand rule and under a
trained curriculum policy, on the same lattice, at equal thickness.

    python benchmarks/lattice_heightmaps.py --model RUN/stage3/stage3_final.zip --stage 3

``RUN`` is a run folder of the full curriculum (``sb3-ext-curriculum --stage all``). Each arm runs
``--episodes`` deterministic episodes with :func:`sb3_ext.curriculum.evaluation.evaluate`, exactly
as a stage's final evaluation does: neutral physics first, then the policy and every hand-rule
gain stopped at the neutral films' mean final height, all from the same seed (not the one the
run's own final evaluation used, so these are fresh episodes). The hand rule shown is the gain
with the smoothest films at mean ESS >= 0.5, as in the evaluation. Each panel shows the arm's
median-W episode, not its best one; its title gives that film's W and the arm's mean and
spread over all episodes.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import gymnasium as gym
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from stable_baselines3 import PPO
from stable_baselines3.common.type_aliases import PolicyPredictor

from sb3_ext.curriculum.config import DEFAULT_CONFIG_DIR, StageConfig, load_stage_configs
from sb3_ext.curriculum.evaluation import HAND_RULE_GAINS, EvaluationResult, best_hand_rule, evaluate
from sb3_ext.envs.lattice.env import LatticeGrowthEnv
from sb3_ext.envs.lattice.heuristics import NeutralPolicy, ValleyDownhillPolicy

OUTPUT = Path(__file__).resolve().parents[1] / "docs" / "lattice_heightmaps.png"


def films(
    predictor: PolicyPredictor, config: StageConfig, episodes: int, seed: int, stop_height: float | None = None
) -> tuple[EvaluationResult, list[np.ndarray]]:
    """The evaluation of ``predictor`` and the final height map of each of its episodes."""
    kept: list[np.ndarray] = []

    def keep(env: gym.Env) -> None:
        lattice = env.unwrapped
        assert isinstance(lattice, LatticeGrowthEnv), f"{lattice} grows no film"
        kept.append(lattice.engine.heights.astype(float))

    result = evaluate(predictor, config, episodes, seed, stop_height=stop_height, on_episode_end=keep)
    return result, kept


def median_film(maps: list[np.ndarray]) -> np.ndarray:
    """The film whose roughness is the median of the episodes' (the lower middle one if even)."""
    order = np.argsort([m.std() for m in maps])
    return maps[order[(len(maps) - 1) // 2]]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True, help="trained curriculum model (RUN/stageN/stageN_final.zip)")
    parser.add_argument("--stage", type=int, default=3, choices=[1, 2, 3], help="whose lattice to grow (default 3)")
    parser.add_argument("--episodes", type=int, default=5, help="episodes per arm (default 5, as the final evaluation)")
    parser.add_argument("--seed", type=int, default=700, help="evaluation seed (default 700)")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args()

    config = load_stage_configs(DEFAULT_CONFIG_DIR)[args.stage]
    radius = config.environment.patch_radius
    model = PPO.load(args.model, device="cpu")
    neutral, neutral_maps = films(NeutralPolicy(radius), config, args.episodes, args.seed)
    height = neutral.mean_height
    policy, policy_maps = films(model, config, args.episodes, args.seed, stop_height=height)
    hands = {
        str(g): films(ValleyDownhillPolicy(radius, g, g), config, args.episodes, args.seed, height) for g in HAND_RULE_GAINS
    }
    gain = best_hand_rule({g: result for g, (result, _) in hands.items()})
    arms = {
        "neutral physics (exact KMC)": (neutral, neutral_maps),
        f"hand rule, gain {gain}": hands[gain],
        "trained policy": (policy, policy_maps),
    }

    shown = {title: median_film(maps) for title, (_, maps) in arms.items()}
    low = min(m.min() for m in shown.values())
    high = max(m.max() for m in shown.values())
    figure, axes = plt.subplots(1, len(arms), figsize=(4.1 * len(arms), 4.3), constrained_layout=True)
    for axis, (title, (result, maps)) in zip(axes, arms.items(), strict=True):
        film = shown[title]
        spread = np.std([m.std() for m in maps])
        image = axis.imshow(film, cmap="viridis", vmin=low, vmax=high, interpolation="nearest")
        axis.set_title(
            f"{title}\nthis film: W {film.std():.2f} ML, height {film.mean():.2f} ML\n"
            f"{len(maps)} episodes: W {result.final_roughness:.3f} ± {spread:.3f}, ESS {result.mean_ess:.2f}",
            fontsize=9.5,
        )
        axis.set_xticks([])
        axis.set_yticks([])
    figure.colorbar(image, ax=axes, shrink=0.8, label="height (monolayers)")
    size = "x".join(map(str, config.environment.lattice_size))
    figure.suptitle(
        f"{config.environment.env_id}, stage {args.stage}: {size}, {config.environment.temperature:.0f} K, "
        f"equal thickness; each panel the median-W film of its arm",
        fontsize=11,
    )
    figure.savefig(args.output, dpi=100)
    print(f"written: {args.output} (model {args.model}, seed {args.seed}, {args.episodes} episodes per arm)")
    for title, (result, maps) in arms.items():
        print(f"{title}: W {result.final_roughness:.3f} ± {np.std([m.std() for m in maps]):.3f}, "
              f"ESS {result.mean_ess:.3f}, height {result.mean_height:.3f}; shown W {shown[title].std():.3f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
