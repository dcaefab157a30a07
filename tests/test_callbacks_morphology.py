"""MorphologyLogger: means of the finished episodes' figures, by hand."""

import numpy as np
import pytest
from stable_baselines3 import PPO
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.logger import Logger

from curriculum_fakes import FakeLatticeEnv, one_torch_thread  # noqa: F401 - autouse fixture
from sb3_ext.callbacks import MorphologyLogger


def _attached_logger():
    model = PPO("MlpPolicy", make_vec_env(FakeLatticeEnv, n_envs=2), n_steps=8, batch_size=8)
    model.set_logger(Logger(folder=None, output_formats=[]))
    callback = MorphologyLogger()
    callback.init_callback(model)
    return model, callback


def _step(callback, dones, infos):
    callback.update_locals({"dones": np.array(dones), "infos": infos})
    callback.on_step()


def test_records_means_of_finished_episodes_only():
    model, callback = _attached_logger()
    running = {"ess": 0.9, "roughness": 5.0, "coverage": 0.1}  # not finished: must be ignored
    _step(
        callback,
        [True, False],
        [{"final_roughness": 0.6, "final_coverage": 0.5, "mean_height": 2.0, "episode": {"r": -3.0, "l": 7}}, running],
    )
    _step(
        callback,
        [False, True],
        [running, {"final_roughness": 0.2, "final_coverage": 1.0, "mean_height": 4.0, "episode": {"r": -1.0, "l": 7}}],
    )
    _step(callback, [True, False], [{"final_roughness": 0.4, "final_coverage": 0.0, "episode": {"r": -2.0, "l": 7}}, running])
    callback.on_rollout_end()
    values = model.logger.name_to_value
    assert values["morphology/roughness_mean"] == pytest.approx((0.6 + 0.2 + 0.4) / 3)
    assert values["morphology/coverage_mean"] == pytest.approx((0.5 + 1.0 + 0.0) / 3)
    # coverage 0 has no ratio: mean of 0.6/0.5 and 0.2/1.0
    assert values["morphology/roughness_coverage_ratio"] == pytest.approx((1.2 + 0.2) / 2)
    assert values["morphology/mean_height"] == pytest.approx(3.0)
    assert values["episode/reward"] == pytest.approx(-2.0)


def test_nothing_recorded_without_finished_episodes_and_collector_is_cleared():
    model, callback = _attached_logger()
    _step(
        callback,
        [True, True],
        [{"final_roughness": 1.0, "final_coverage": 1.0}, {"final_roughness": 3.0, "final_coverage": 1.0}],
    )
    callback.on_rollout_end()
    model.logger.dump(0)
    _step(callback, [False, False], [{}, {}])
    callback.on_rollout_end()
    assert "morphology/roughness_mean" not in model.logger.name_to_value
    _step(callback, [True, False], [{"final_roughness": 0.5, "final_coverage": 1.0}, {}])
    callback.on_rollout_end()
    assert model.logger.name_to_value["morphology/roughness_mean"] == pytest.approx(0.5)


def test_env_without_morphology_is_reported():
    _model, callback = _attached_logger()
    _step(callback, [True, False], [{"episode": {"r": 1.0, "l": 1}}, {}])
    with pytest.raises(ValueError, match="no 'final_roughness'"):
        callback.on_rollout_end()
