"""RunArtifacts: the files, their contents, resuming into the same folder, and atomic writes."""

import json
import logging
import os

import numpy as np
import pytest
from stable_baselines3 import DQN, PPO
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.logger import Logger
from stable_baselines3.common.monitor import Monitor

from curriculum_fakes import FakeLatticeEnv, one_torch_thread  # noqa: F401 - autouse fixture
from sb3_ext.callbacks import RunArtifacts
from sb3_ext.callbacks.curves import DEFAULT_PANELS, CurvePanel, moving_average, plot_training_curves
from sb3_ext.curriculum.curves import LATTICE_PANELS
from sb3_ext.curriculum.morphology import FINAL_INFO_KEYS
from sb3_ext.common.atomic import atomic_save_model, atomic_write_text

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _model(seed=0):
    env = make_vec_env(FakeLatticeEnv, n_envs=2, seed=seed, env_kwargs={"max_steps": 5})
    model = PPO("MlpPolicy", env, n_steps=8, batch_size=16, n_epochs=1, seed=seed)
    model.set_logger(Logger(folder=None, output_formats=[]))
    return model


def _artifacts(tmp_path):
    """As the curriculum builds it: the lattice's episode-end infos and curve panels."""
    return RunArtifacts(
        str(tmp_path), eval_env=Monitor(FakeLatticeEnv(max_steps=5)), eval_freq=32, n_eval_episodes=2,
        checkpoint_freq=32, eval_info_keys=FINAL_INFO_KEYS, panels=LATTICE_PANELS,
    )  # fmt: skip


def test_writes_checkpoints_log_metrics_and_curves(tmp_path):
    model = _model()
    artifacts = _artifacts(tmp_path)
    model.learn(64, callback=artifacts)

    names = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert names == ["best.zip", "checkpoint_32.zip", "checkpoint_64.zip", "latest.zip"]
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["eval/mean_reward"]["steps"] == [32, 64]
    assert metrics["rollout/ep_rew_mean"]["steps"] == [16, 32, 48, 64]
    assert {"eval/final_roughness", "eval/final_coverage", "eval/mean_ess", "train/value_loss"} <= set(metrics)
    # best.zip is the model of the best evaluation
    rewards = metrics["eval/mean_reward"]
    best_step = rewards["steps"][int(np.argmax(rewards["values"]))]
    assert PPO.load(tmp_path / "checkpoints" / "best.zip").num_timesteps == best_step
    assert PPO.load(tmp_path / "checkpoints" / "latest.zip").num_timesteps == 64
    log = (tmp_path / "logs" / "training.log").read_text()
    assert "training starts at step 0" in log and "eval at step 32: mean reward" in log
    assert "| rollout/" in log  # the logger's tables are copied too
    assert (tmp_path / "training_curves.png").read_bytes()[:8] == PNG_MAGIC
    # the callback leaves the logger and the logging hierarchy as it found them
    assert model.logger.output_formats == []
    assert logging.getLogger("sb3_ext").handlers == []


def test_resuming_in_the_same_folder_continues_the_files(tmp_path):
    model = _model()
    model.learn(64, callback=_artifacts(tmp_path))
    first = json.loads((tmp_path / "metrics.json").read_text())

    resumed = PPO.load(tmp_path / "checkpoints" / "checkpoint_32.zip", env=_model(seed=1).get_env())
    resumed.set_logger(Logger(folder=None, output_formats=[]))
    artifacts = _artifacts(tmp_path)
    resumed.learn(32, callback=artifacts, reset_num_timesteps=False)

    metrics = json.loads((tmp_path / "metrics.json").read_text())
    # points after step 32 were dropped and rewritten by the resumed session, in order
    assert metrics["rollout/ep_rew_mean"]["steps"] == [16, 32, 48, 64]
    assert metrics["eval/mean_reward"]["steps"] == [32, 64]
    assert metrics["eval/mean_reward"]["values"][0] == first["eval/mean_reward"]["values"][0]
    # best.zip is only replaced by a model better than every one evaluated before
    every_eval = first["eval/mean_reward"]["values"] + metrics["eval/mean_reward"]["values"][1:]
    assert artifacts.evaluation.best_mean_reward == max(every_eval)
    replaced = metrics["eval/mean_reward"]["values"][1] > max(first["eval/mean_reward"]["values"])
    best_model = PPO.load(tmp_path / "checkpoints" / "best.zip")
    assert best_model.num_timesteps == (
        64 if replaced else first["eval/mean_reward"]["steps"][int(np.argmax(first["eval/mean_reward"]["values"]))]
    )
    log = (tmp_path / "logs" / "training.log").read_text()
    assert log.count("training starts") == 2 and "training starts at step 32" in log


def test_a_failed_write_leaves_the_previous_file_and_no_temporary(tmp_path, monkeypatch):
    model = _model()
    target = tmp_path / "latest.zip"
    atomic_save_model(model, target)
    before = target.read_bytes()

    def broken_save(handle, *args, **kwargs):
        handle.write(b"half a model")
        raise OSError("disk full")

    monkeypatch.setattr(model, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        atomic_save_model(model, target)
    assert target.read_bytes() == before
    assert os.listdir(tmp_path) == ["latest.zip"]
    with pytest.raises(ValueError, match=r"must end in \.zip"):
        atomic_save_model(model, tmp_path / "model")
    atomic_write_text(tmp_path / "note.txt", "done")
    assert (tmp_path / "note.txt").read_text() == "done"


def test_moving_average_against_hand_values():
    assert moving_average(np.array([1.0, 2.0, 3.0, 4.0]), 2) == pytest.approx([1.0, 1.5, 2.5, 3.5])
    assert moving_average(np.array([3.0, 0.0, 3.0]), 10) == pytest.approx([3.0, 1.5, 2.0])


def drawn_lines(figure) -> dict[str, int]:
    """Panel title -> number of curves drawn on it."""
    return {axes.get_title(): len(axes.get_lines()) for axes in figure.axes if axes.get_visible()}


@pytest.mark.parametrize("algo", [DQN, PPO])
def test_default_panels_draw_any_sb3_model(tmp_path, algo):
    """Without lattice keys or panels: reward, loss, exploration and value curves of plain SB3 models."""
    settings = dict(learning_starts=50, train_freq=4, exploration_fraction=0.5) if algo is DQN else dict(n_steps=64)
    model = algo("MlpPolicy", "CartPole-v1", policy_kwargs=dict(net_arch=[8]), seed=0, **settings)
    artifacts = RunArtifacts(str(tmp_path), eval_env="CartPole-v1", eval_freq=128, n_eval_episodes=1, checkpoint_freq=10**9)
    model.learn(512, callback=artifacts, log_interval=1)
    assert (tmp_path / "training_curves.png").read_bytes()[:8] == PNG_MAGIC
    assert not any(key.startswith("eval/final") for key in artifacts.history)  # no lattice keys asked for
    lines = drawn_lines(plot_training_curves(artifacts.history, tmp_path / "again.png"))
    assert list(lines) == [panel.title for panel in DEFAULT_PANELS]
    assert lines["Reward"] >= 3 and lines["Loss"] >= 1  # training + moving average + evaluation
    if algo is DQN:
        assert lines["Exploration"] == 1  # epsilon
    else:
        assert lines["Value estimates"] == 1  # explained variance


def test_panels_from_yaml_data_and_alternative_keys(tmp_path):
    history = {"b": {"steps": [1, 2], "values": [3.0, 4.0]}, "c": {"steps": [1], "values": [1.0]}}
    panels = [
        {"title": "first logged of a|b", "lines": [["a|b", "a or b"]]},
        {"title": "c", "lines": [["c", "c"], ["d", "d"]]},
    ]
    artifacts = RunArtifacts(str(tmp_path), panels=panels)
    assert artifacts.panels[0] == CurvePanel("first logged of a|b", (("a|b", "a or b"),))
    figure = plot_training_curves(history, tmp_path / "curves.png", artifacts.panels)
    assert drawn_lines(figure) == {"first logged of a|b": 1, "c": 1}
    np.testing.assert_array_equal(figure.axes[0].get_lines()[0].get_ydata(), [3.0, 4.0])
    with pytest.raises(ValueError, match="expected keys title, lines"):
        RunArtifacts(str(tmp_path), panels=[{"title": "no lines"}])
