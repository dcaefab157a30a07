"""Draw docs/lattice_heightmaps.png: the film grown by neutral physics beside the film grown under
a trained curriculum policy, same lattice, same seed.

    python docs/figures/lattice_heightmaps.py --model RUN/stage1/stage1_final.zip [--stage 2]

Without ``--model`` it first trains one with ``sb3-ext-curriculum --stage 1 --preset quick``
(a few minutes). Each panel is the height map at the end of one deterministic episode of the
chosen stage's lattice (its stage file's environment settings), with the roughness W and the
mean height in its title; the two runs share the environment seed, so they start from the same
random streams.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from stable_baselines3 import PPO

from sb3_ext.curriculum.cli import main as curriculum_main
from sb3_ext.curriculum.config import DEFAULT_CONFIG_DIR, load_stage_configs
from sb3_ext.envs.lattice.env import LatticeGrowthEnv

OUTPUT = Path(__file__).resolve().parents[1] / "lattice_heightmaps.png"


def final_heights(model: PPO | None, env_kwargs: dict, seed: int) -> np.ndarray:
    """Heights at the end of one deterministic episode (``model=None``: the zero action, exact KMC)."""
    env = LatticeGrowthEnv(**env_kwargs)
    obs, _ = env.reset(seed=seed)
    done = False
    while not done:
        if model is None:
            action = np.zeros(env.action_space.shape, dtype=np.float32)
        else:
            action, _ = model.predict(obs, deterministic=True)
        obs, _, terminated, truncated, _ = env.step(action)
        done = terminated or truncated
    heights = np.array(env.engine.heights, dtype=float).reshape(env.engine.nx, env.engine.ny)
    env.close()
    return heights


def train_quick_stage1(output: Path) -> Path:
    """Train curriculum stage 1 with the quick preset; return its final model."""
    arguments = ["--stage", "1", "--preset", "quick", "--vec-env", "dummy", "--no-progress", "--output", str(output)]
    status = curriculum_main(arguments)
    if status != 0:
        raise SystemExit(f"training stopped with status {status}")
    (run_dir,) = output.iterdir()
    return run_dir / "stage1" / "stage1_final.zip"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="trained curriculum model (default: train stage 1, quick preset)")
    parser.add_argument("--stage", type=int, default=1, choices=[1, 2, 3], help="whose lattice to grow (default 1)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args()

    model_path = args.model or train_quick_stage1(Path(tempfile.mkdtemp(prefix="heightmaps-")))
    model = PPO.load(model_path, device="cpu")
    env_kwargs = load_stage_configs(DEFAULT_CONFIG_DIR)[args.stage].environment.env_kwargs()
    panels = {"neutral physics (exact KMC)": final_heights(None, env_kwargs, args.seed),
              "trained policy": final_heights(model, env_kwargs, args.seed)}  # fmt: skip

    low = min(h.min() for h in panels.values())
    high = max(h.max() for h in panels.values())
    figure, axes = plt.subplots(1, 2, figsize=(9, 4.2), constrained_layout=True)
    for axis, (title, heights) in zip(axes, panels.items(), strict=True):
        image = axis.imshow(heights, cmap="viridis", vmin=low, vmax=high, interpolation="nearest")
        axis.set_title(f"{title}\nW = {heights.std():.2f} ML, mean height {heights.mean():.2f} ML", fontsize=10)
        axis.set_xticks([])
        axis.set_yticks([])
    figure.colorbar(image, ax=axes, shrink=0.85, label="height (monolayers)")
    size = "x".join(map(str, env_kwargs["lattice_size"]))
    figure.suptitle(f"LatticeGrowth-v0, {size}, {env_kwargs['temperature']:.0f} K, seed {args.seed}", fontsize=11)
    figure.savefig(args.output, dpi=110)
    print(f"written: {args.output} (model {model_path})")
    for title, heights in panels.items():
        print(f"{title}: W {heights.std():.3f}, mean height {heights.mean():.3f}")


if __name__ == "__main__":
    sys.exit(main())
