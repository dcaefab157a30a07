"""ESSEarlyStopping: the logged figures, the patience count, and the stop message."""

import logging

import numpy as np
import pytest
from stable_baselines3 import PPO
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.logger import Logger

from curriculum_fakes import FakeLatticeEnv, one_torch_thread  # noqa: F401 - autouse fixture
from sb3_ext.callbacks import ESSEarlyStopping
from sb3_ext.callbacks.artifacts import MetricsRecorder


def _model(n_envs=1, **env_kwargs):
    env = make_vec_env(FakeLatticeEnv, n_envs=n_envs, seed=0, env_kwargs={"max_steps": 7, **env_kwargs})
    model = PPO("MlpPolicy", env, n_steps=8, batch_size=8, n_epochs=1, seed=0)
    history = {}
    model.set_logger(Logger(folder=None, output_formats=[MetricsRecorder(history)]))
    return model, history


def test_stops_after_patience_low_checks_and_logs_the_figures(caplog):
    # Every step reports ESS 0.1, 0.2, 0.3, 0.2: each 4-step window has mean 0.2, min 0.1, max 0.3.
    model, history = _model(ess_cycle=(0.1, 0.2, 0.3, 0.2))
    callback = ESSEarlyStopping(threshold=0.25, patience=3, check_freq=4)
    with caplog.at_level(logging.WARNING, logger="sb3_ext"):
        model.learn(1000, callback=callback)
    assert callback.stopped
    assert model.num_timesteps == 12  # three checks of four steps, then stop
    assert "ESS early stop at step 12" in caplog.text
    assert "mean 0.200, min 0.100, max 0.300 over 4 steps" in caplog.text
    assert "3 consecutive checks" in caplog.text
    # The first rollout (8 steps) was dumped with the second check's figures.
    assert history["train/ess_mean"]["values"][0] == pytest.approx(0.2)
    assert history["train/ess_min"]["values"][0] == pytest.approx(0.1)
    assert history["train/ess_max"]["values"][0] == pytest.approx(0.3)


def test_a_good_check_resets_the_count():
    # Two envs, check every 4 steps = 2 calls: windows alternate between mean 0.1 and mean 0.9.
    model, _ = _model(n_envs=2, ess_cycle=(0.1, 0.1, 0.9, 0.9))
    callback = ESSEarlyStopping(threshold=0.3, patience=2, check_freq=4)
    model.learn(64, callback=callback)
    assert not callback.stopped
    assert model.num_timesteps == 64
    assert callback.checks_below == 0


def test_window_statistics_match_the_infos():
    model, history = _model(n_envs=2)  # ESS from the actions: exp(-mean(a^2)/2)
    seen = []

    class Spy(ESSEarlyStopping):
        def _on_step(self):
            seen.extend(info["ess"] for info in self.locals["infos"])
            return super()._on_step()

    model.learn(16, callback=Spy(threshold=0.01, patience=5, check_freq=16))
    assert len(seen) == 16
    assert history["train/ess_mean"]["values"][-1] == pytest.approx(np.mean(seen))
    assert history["train/ess_min"]["values"][-1] == pytest.approx(np.min(seen))
    assert history["train/ess_max"]["values"][-1] == pytest.approx(np.max(seen))


def test_env_without_ess_and_bad_arguments_are_reported():
    model = PPO("MlpPolicy", "CartPole-v1", n_steps=8, batch_size=8)
    with pytest.raises(ValueError, match="no 'ess' entry"):
        model.learn(8, callback=ESSEarlyStopping())
    with pytest.raises(ValueError, match="threshold must be in"):
        ESSEarlyStopping(threshold=0.0)
    with pytest.raises(ValueError, match="patience must be >= 1"):
        ESSEarlyStopping(patience=0)
