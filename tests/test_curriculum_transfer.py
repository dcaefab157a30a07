"""Stage N+1 loads stage N's model but trains with its own PPO settings (not the saved ones)."""

import pytest
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.logger import Logger

from curriculum_fakes import one_torch_thread  # noqa: F401 - autouse fixture
from sb3_ext.curriculum.config import PPOConfig
from sb3_ext.curriculum.transfer import load_for_stage, new_model
from sb3_ext.envs.lattice.env import LatticeGrowthEnv

STAGE1 = PPOConfig(
    learning_rate=3e-4,
    n_steps=32,
    batch_size=16,
    n_epochs=2,
    gamma=0.99,
    gae_lambda=0.95,
    clip_range=0.2,
    ent_coef=0.01,
    vf_coef=0.5,
    max_grad_norm=0.5,
)
STAGE2 = PPOConfig(
    learning_rate=1e-4,
    n_steps=16,
    batch_size=8,
    n_epochs=3,
    gamma=0.95,
    gae_lambda=0.9,
    clip_range=0.1,
    ent_coef=0.005,
    vf_coef=0.25,
    max_grad_norm=0.3,
)


def _env(n_envs):
    return make_vec_env(LatticeGrowthEnv, n_envs=n_envs, seed=0, env_kwargs={"max_steps": 6})


@pytest.fixture
def stage1_zip(tmp_path):
    model = new_model(STAGE1, _env(2), seed=0)
    model.learn(64)
    model.save(tmp_path / "stage1_final.zip")
    return tmp_path / "stage1_final.zip", model


def test_plain_load_would_keep_stage1_settings(stage1_zip):
    # The control: this is why the transfer must be deliberate.
    model = PPO.load(stage1_zip[0], env=_env(3))
    assert model.lr_schedule(1.0) == pytest.approx(3e-4) and model.ent_coef == 0.01 and model.n_steps == 32


def test_loaded_model_runs_with_stage2_settings(stage1_zip):
    path, stage1 = stage1_zip
    model = load_for_stage(path, _env(3), STAGE2)

    # weights and the step counter come from stage 1
    for name, tensor in stage1.policy.state_dict().items():
        assert torch.equal(tensor, model.policy.state_dict()[name]), name
    assert model.num_timesteps == 64
    # every PPO setting is stage 2's
    assert model.lr_schedule(1.0) == model.lr_schedule(0.3) == pytest.approx(1e-4)
    assert model.policy.optimizer.param_groups[0]["lr"] == pytest.approx(1e-4)
    assert model.clip_range(1.0) == pytest.approx(0.1)
    assert (model.ent_coef, model.vf_coef, model.max_grad_norm) == (0.005, 0.25, 0.3)
    assert (model.n_steps, model.batch_size, model.n_epochs, model.gamma, model.gae_lambda) == (16, 8, 3, 0.95, 0.9)
    # the rollout buffer was rebuilt for 16 steps x 3 envs with stage 2's discounting
    buffer = model.rollout_buffer
    assert (buffer.buffer_size, buffer.n_envs, buffer.gamma, buffer.gae_lambda) == (16, 3, 0.95, 0.9)

    # ...and they are the values in effect during training
    model.set_logger(Logger(folder=None, output_formats=[]))
    model.learn(48, reset_num_timesteps=False)
    assert model.num_timesteps == 64 + 48  # one rollout of 16 x 3, on a continuous step axis
    # PPO.train() records these after the rollout's dump: they are still in the logger
    logged = model.logger.name_to_value
    assert logged["train/learning_rate"] == pytest.approx(1e-4)
    assert logged["train/clip_range"] == pytest.approx(0.1)
    assert logged["train/n_updates"] == stage1._n_updates + 3  # n_epochs = 3
