"""Every callback can be built from an rl-zoo3 YAML ``callback:`` entry; CurriculumTransfer warm-starts."""

import pytest
import torch
import yaml
from rl_zoo3.utils import get_callback_list
from stable_baselines3 import PPO
from stable_baselines3.common.env_util import make_vec_env

from curriculum_fakes import FakeLatticeEnv, one_torch_thread  # noqa: F401 - autouse fixture
from sb3_ext.callbacks import CurriculumTransfer, ESSEarlyStopping, ManifestExport, MorphologyLogger, RunArtifacts


def test_callbacks_from_a_zoo_yaml(tmp_path):
    hyperparams = yaml.safe_load(
        f"""
        callback:
          - sb3_ext.callbacks.ESSEarlyStopping:
              threshold: 0.4
              patience: 3
              check_freq: 500
          - sb3_ext.callbacks.MorphologyLogger
          - sb3_ext.callbacks.RunArtifacts:
              save_dir: {tmp_path / "artifacts"}
              eval_env: CartPole-v1
              eval_freq: 200
          - sb3_ext.callbacks.CurriculumTransfer:
              load_path: {tmp_path / "stage1_final.zip"}
          - sb3_ext.callbacks.ManifestExport:
              directory: {tmp_path / "artifacts"}
              seed: 7
        """
    )
    ess, morphology, artifacts, transfer, manifest = get_callback_list(hyperparams)
    assert isinstance(ess, ESSEarlyStopping) and (ess.threshold, ess.patience, ess.check_freq) == (0.4, 3, 500)
    assert isinstance(morphology, MorphologyLogger)
    assert isinstance(artifacts, RunArtifacts) and artifacts.evaluation.eval_env.num_envs == 1
    assert isinstance(transfer, CurriculumTransfer) and transfer.load_path.name == "stage1_final.zip"
    assert isinstance(manifest, ManifestExport) and manifest.seed == 7


def _model(lr, n_steps, **env_kwargs):
    env = make_vec_env(FakeLatticeEnv, n_envs=1, env_kwargs=env_kwargs)
    return PPO("MlpPolicy", env, learning_rate=lr, n_steps=n_steps, batch_size=8, n_epochs=1, seed=0)


def test_curriculum_transfer_copies_weights_and_keeps_own_settings(tmp_path):
    source = _model(3e-4, 16)
    source.learn(16)
    source.save(tmp_path / "stage1_final.zip")
    target = _model(1e-4, 8, lattice_size=(20, 20, 10))
    callback = CurriculumTransfer(str(tmp_path / "stage1_final.zip"), load_optimizer=True)
    callback.init_callback(target)
    for name, tensor in source.policy.state_dict().items():
        assert torch.equal(tensor, target.policy.state_dict()[name]), name
    assert target.lr_schedule(1.0) == pytest.approx(1e-4) and target.n_steps == 8
    assert target.policy.optimizer.param_groups[0]["lr"] == pytest.approx(1e-4)
    assert target.policy.optimizer.state_dict()["state"]  # Adam moments came along
    # attaching again (a second learn()) does not reload over trained weights
    with torch.no_grad():
        next(target.policy.parameters()).add_(1.0)
    changed = next(target.policy.parameters()).clone()
    callback.init_callback(target)
    assert torch.equal(next(target.policy.parameters()), changed)


def test_curriculum_transfer_rejects_other_spaces(tmp_path):
    PPO("MlpPolicy", "CartPole-v1", n_steps=8, batch_size=8).save(tmp_path / "cartpole.zip")
    with pytest.raises(ValueError, match="trained with observation_space"):
        CurriculumTransfer(str(tmp_path / "cartpole.zip")).init_callback(_model(1e-4, 8))
    with pytest.raises(ValueError, match="is not a file"):
        CurriculumTransfer(str(tmp_path / "missing.zip")).init_callback(_model(1e-4, 8))
