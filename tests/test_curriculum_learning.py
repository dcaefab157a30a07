"""Learning is real: PPO on the per-column swarm grows smoother films than neutral physics at equal
thickness, within mean ESS >= 0.5.

The fast test trains the stage-1 policy briefly and compares it with its own untrained start and
with neutral physics on the same evaluation seeds. The slow test runs ``--stage all --preset
quick`` exactly as ``make demo`` does and asks every stage for at least 20% lower W than neutral.
"""

import json

import pytest
from curriculum_fakes import one_torch_thread  # noqa: F401 - autouse fixture
from test_curriculum_cli import CONFIGS

from sb3_ext.curriculum.cli import main
from sb3_ext.curriculum.config import load_stage_configs
from sb3_ext.curriculum.envs import make_training_env
from sb3_ext.curriculum.evaluation import compare
from sb3_ext.curriculum.transfer import new_model


def test_short_training_smooths_the_film_at_equal_thickness():
    config = load_stage_configs(CONFIGS)[1]
    env = make_training_env(config, 2, seed=0, subprocesses=False)
    model = new_model(config.ppo, env, seed=0, device="cpu")
    untrained = compare(model, config, 4, seed=123)
    model.learn(49_152)  # 12 rollouts of 32 steps x 2 lattices x 64 agents
    trained = compare(model, config, 4, seed=123)
    neutral_w = trained["neutral"]["final_roughness"]
    assert untrained["policy"]["final_roughness"] > 0.85 * neutral_w  # the start is close to neutral physics
    assert trained["policy"]["final_roughness"] < 0.75 * neutral_w
    assert trained["policy"]["mean_ess"] >= 0.5
    assert abs(trained["policy"]["mean_height"] - trained["neutral"]["mean_height"]) < 0.05  # same thickness


@pytest.mark.slow
def test_quick_preset_grows_films_at_least_20_percent_smoother_on_every_stage(tmp_path):
    assert main(["--stage", "all", "--preset", "quick", "--seed", "0", "--output", str(tmp_path), "--no-progress"]) == 0
    (run_dir,) = tmp_path.glob("run_*")
    summary = json.loads((run_dir / "summary.json").read_text())
    for stage in ("1", "2", "3"):
        row = summary["stages"][stage]
        policy, neutral = row["policy"], row["neutral"]
        assert policy["final_roughness"] <= 0.8 * neutral["final_roughness"], (stage, policy, neutral)
        assert policy["mean_ess"] >= 0.5, (stage, policy)
        assert policy["mean_height"] >= neutral["mean_height"] - 0.05  # read at equal thickness
