"""Learning is real: PPO on the stage-1 lattice learns to hop downhill and grows smoother films.

The slow test runs ``--stage 1 --preset quick`` exactly as ``make demo`` does and compares the
trained policy with the neutral (exact KMC) policy on the same evaluation seeds. The fast test
is its cheap proxy for the default run: after a short training with a larger step, the policy
must favour the hop towards the lowest neighbour (local +x in the agent's frame), the rule
behind the smoother films.
"""

import numpy as np
import pytest
from stable_baselines3 import PPO
from stable_baselines3.common.env_util import make_vec_env

from curriculum_fakes import one_torch_thread  # noqa: F401 - autouse fixture
from sb3_ext.curriculum.cli import main
from sb3_ext.curriculum.config import load_stage_configs
from sb3_ext.curriculum.evaluation import evaluate
from sb3_ext.curriculum.state import RunState
from sb3_ext.envs.lattice.env import EVENTS_PER_AGENT, LatticeGrowthEnv
from sb3_ext.envs.lattice.heuristics import NeutralPolicy

from test_curriculum_cli import CONFIGS

PLUS_X = 0  # hop slots: local +x (lowest neighbour), -x, +y, -y, then deposition


def _neutral_observations(config, n_steps=300):
    env = LatticeGrowthEnv(**config.environment.env_kwargs())
    obs, _ = env.reset(seed=7)
    observations = []
    for _ in range(n_steps):
        observations.append(obs)
        obs, _, terminated, truncated, _ = env.step(np.zeros(env.action_space.shape, dtype=np.float32))
        if terminated or truncated:
            obs, _ = env.reset()
    return np.array(observations)


def test_short_training_learns_to_favour_the_downhill_hop():
    config = load_stage_configs(CONFIGS)[1]
    env = make_vec_env(LatticeGrowthEnv, n_envs=4, seed=0, env_kwargs=config.environment.env_kwargs())
    model = PPO("MlpPolicy", env, n_steps=512, batch_size=128, n_epochs=10, learning_rate=3e-3, ent_coef=0.01, seed=0)
    observations = _neutral_observations(config)
    before = model.predict(observations, deterministic=True)[0].reshape(len(observations), -1, EVENTS_PER_AGENT)
    model.learn(16_384)
    after = model.predict(observations, deterministic=True)[0].reshape(len(observations), -1, EVENTS_PER_AGENT)
    hop_means = after[..., :4].mean(axis=(0, 1))
    # the bias towards the lowest neighbour grew and now exceeds every other hop's
    assert hop_means[PLUS_X] > before[..., PLUS_X].mean() + 0.05
    assert hop_means[PLUS_X] > hop_means[1:].max() + 0.05


@pytest.mark.slow
def test_quick_preset_grows_smoother_films_than_neutral_physics(tmp_path):
    assert main(["--stage", "1", "--preset", "quick", "--seed", "0", "--output", str(tmp_path), "--no-progress"]) == 0
    (run_dir,) = tmp_path.glob("run_*")
    state = RunState.load(run_dir)
    config = state.configs[1]
    trained = PPO.load(state.final_model(1), device="cpu")
    policy = evaluate(trained, config, 100, seed=123)
    neutral = evaluate(NeutralPolicy(), config, 100, seed=123)
    assert policy.final_roughness < neutral.final_roughness - 2 * neutral.final_roughness_std / np.sqrt(100)
    assert abs(policy.mean_height / neutral.mean_height - 1) < 0.10  # same deposited thickness
    assert policy.mean_ess >= 0.3
