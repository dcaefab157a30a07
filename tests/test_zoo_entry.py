"""read_zoo_entry: an rl-zoo3 YAML entry split into constructor arguments as rl-zoo3 splits it."""

import numpy as np
import pytest
import torch as th
from stable_baselines3.common.noise import NormalActionNoise, OrnsteinUhlenbeckActionNoise

from sb3_ext.zoo.config import HYPERPARAMS_DIR, ZooUsageError, read_zoo_entry, rl_zoo3_hyperparams_file


def test_entry_fields_noise_and_policy_kwargs(tmp_path):
    conf = tmp_path / "td3.yml"
    conf.write_text(
        "Pendulum-v1:\n  n_timesteps: 2000\n  policy: MlpPolicy\n  n_envs: 2\n  normalize: true\n"
        "  noise_type: ornstein-uhlenbeck\n  noise_std: 0.3\n  gamma: 0.9\n"
        "  policy_kwargs: dict(net_arch=[8], activation_fn=nn.Tanh)\n  env_kwargs: {g: 9.0}\n"
    )
    entry = read_zoo_entry("td3", "Pendulum-v1", conf)
    assert (entry.policy, entry.n_timesteps, entry.n_envs, entry.env_kwargs) == ("MlpPolicy", 2000, 2, {"g": 9.0})
    assert entry.zoo_settings == {"normalize": True}
    noise = entry.model_kwargs.pop("action_noise")
    assert isinstance(noise, OrnsteinUhlenbeckActionNoise)
    np.testing.assert_allclose(noise._sigma, [0.3])  # one action dimension in Pendulum
    assert entry.model_kwargs == {"gamma": 0.9, "policy_kwargs": {"net_arch": [8], "activation_fn": th.nn.Tanh}}


def test_default_file_is_ours_then_rl_zoo3s():
    assert read_zoo_entry("reinforce", "CartPole-v1").conf_file == HYPERPARAMS_DIR / "reinforce.yml"
    dqn = read_zoo_entry("dqn", "CartPole-v1")
    assert dqn.conf_file == rl_zoo3_hyperparams_file("dqn") and "policy_kwargs" in dqn.model_kwargs
    td3 = read_zoo_entry("td3", "Pendulum-v1")
    assert isinstance(td3.model_kwargs["action_noise"], NormalActionNoise)


def test_a_missing_entry_is_one_line(tmp_path):
    conf = tmp_path / "x.yml"
    conf.write_text("CartPole-v1:\n  gamma: 0.9\n")
    with pytest.raises(ZooUsageError, match=r"x.yml: no entry for 'Acrobot-v1' \(it has: CartPole-v1\)"):
        read_zoo_entry("dqn", "Acrobot-v1", conf)
