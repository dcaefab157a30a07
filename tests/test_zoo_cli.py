"""sb3-ext-train / sb3-ext-enjoy: rl-zoo3's flags and layout, our defaults, one-line errors."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import numpy as np
import pytest
import rl_zoo3
import rl_zoo3.utils
import yaml

from sb3_ext import enjoy, train
from sb3_ext.twin_dqn import TwinDQN
from sb3_ext.zoo.cli import prepare_replay
from sb3_ext.zoo.config import HYPERPARAMS_DIR, default_conf_file
from sb3_ext.zoo.registry import register_zoo
from zoo_support import assert_ok, run_python

TINY_PPO = ["-params", "n_envs:1", "n_steps:32", "batch_size:32", "n_epochs:1"]
RL_ZOO3_PPO = Path(rl_zoo3.__file__).parent / "hyperparams" / "ppo.yml"


@pytest.fixture(scope="module")
def ppo_run(tmp_path_factory):
    """PPO on CartPole-v1 through ``sb3_ext.train.main`` in this process: our ppo.yml has no
    CartPole entry, so the hyperparameters come from rl-zoo3's own file."""
    root = tmp_path_factory.mktemp("ppo_run")
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        train.main(
            ["--algo", "ppo", "--env", "CartPole-v1", "-n", "64", "-f", str(root / "logs"), "--eval-freq", "-1",
             "--seed", "0", "--num-threads", "1", *TINY_PPO]
        )  # fmt: skip
    return root, output.getvalue()


def test_train_falls_back_to_rl_zoo3_hyperparameters_for_envs_ours_lacks(ppo_run):
    root, output = ppo_run
    assert f"Loading hyperparameters from: {RL_ZOO3_PPO}" in output
    config_file = root / "logs" / "ppo" / "CartPole-v1_1" / "CartPole-v1" / "config.yml"
    saved = dict(yaml.load(config_file.read_text(), Loader=yaml.UnsafeLoader))
    assert saved["gae_lambda"] == yaml.safe_load(RL_ZOO3_PPO.read_text())["CartPole-v1"]["gae_lambda"]
    assert (root / "logs" / "ppo" / "CartPole-v1_1" / "CartPole-v1.zip").is_file()


def test_evaluation_env_is_built_with_the_yaml_env_kwargs(tmp_path, capsys):
    """phase2.yml's AssistGrid-v0 entry picks the 'rock' map; an evaluation env on the default map
    has another observation size and the first evaluation would fail."""
    train.main(
        ["--algo", "phase2", "--env", "AssistGrid-v0", "-n", "64", "--eval-freq", "32", "--eval-episodes", "1",
         "-f", str(tmp_path), "--seed", "0", "--num-threads", "1"]
    )  # fmt: skip
    assert "Eval num_timesteps=32" in capsys.readouterr().out


def cart_near_centre(observation, action, next_observation) -> float:
    """Scripted rater for the RLHF test: the closer the cart to the centre, the better."""
    return -abs(float(next_observation[0]))


def test_rlhf_callback_from_a_yaml_entry_relabels_rewards(tmp_path, capsys):
    rlhf = {"feedback_weight": 0.5, "window": 128, "sources": [{"scripted": f"{__name__}:cart_near_centre"}]}
    entry = {"policy": "MlpPolicy", "n_timesteps": 256, "n_envs": 1, "n_steps": 128,
             "callback": [{"sb3_ext.callbacks.RLHFRewardRelabel": rlhf}]}  # fmt: skip
    conf_file = tmp_path / "reinforce.yml"
    conf_file.write_text(yaml.safe_dump({"CartPole-v1": entry}))
    train.main(
        ["--algo", "reinforce", "--env", "CartPole-v1", "--conf-file", str(conf_file), "-f", str(tmp_path / "logs"),
         "--eval-freq", "-1", "--log-interval", "1", "--seed", "0", "--num-threads", "1"]
    )  # fmt: skip
    adjustments = [float(v) for v in re.findall(r"mean_adjustment\s*\|\s*(\S+)", capsys.readouterr().out)]
    assert adjustments and all(value < 0 for value in adjustments)  # the rater's scores are <= 0


def test_conf_file_defaults_to_ours_and_falls_back_to_rl_zoo3():
    assert default_conf_file("ppo", "CartPole-v1") == RL_ZOO3_PPO
    assert default_conf_file("ppo", "LatticeGrowth-v0") == HYPERPARAMS_DIR / "ppo.yml"
    assert default_conf_file("reinforce", "CartPole-v1") == HYPERPARAMS_DIR / "reinforce.yml"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["--algo", "ppo", "--env", "CartPol-v1"],
            "--env 'CartPol-v1': not a registered environment id; did you mean 'CartPole-v1'?",
        ),
        (
            ["--algo", "ppo", "--env", "CartPole-v1", "-params", "n_step:8"],
            "--hyperparams: unknown hyperparameter 'n_step' for PPO; did you mean 'n_steps'?",
        ),
        (
            ["--algo", "ppo", "--env", "CartPole-v1", "--conf-file", "missing.yml"],
            "missing.yml: hyperparameter file not found",
        ),
        (["--algo", "ppo", "--env", "CartPole-v1", "--conf-file", "broken.yml"], "broken.yml: invalid YAML at line 2"),
        (
            ["--algo", "ppo", "--env", "Pendulum-v1", "--conf-file", "other.yml"],
            "other.yml: no entry for 'Pendulum-v1' (it has: CartPole-v1)",
        ),
        (
            ["--algo", "ppo", "--env", "CartPole-v1", "--conf-file", "other.yml"],
            "other.yml: entry 'CartPole-v1': unknown hyperparameter 'learning_rat' for PPO; did you mean 'learning_rate'?",
        ),
        (
            ["--algo", "ppo", "-optimize", "--storage", "study.db"],
            "--storage 'study.db': expected a journal file ending in '.log' or a database URL",
        ),
        (["--algo", "ppo", "--trial-id", "3"], "--trial-id needs --storage and --study-name"),
        (["--algo", "ppo", "-params", "env_kwargs:'x'"], "--hyperparams: env_kwargs must be a mapping"),
        (
            ["--algo", "ppo", "--storage", "s.log", "--study-name", "none", "--trial-id", "0"],
            "--study-name 'none': no such study in s.log",
        ),
    ],
)  # fmt: skip
def test_bad_input_is_one_line_and_exit_2(argv, message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    Path("broken.yml").write_text("CartPole-v1:\n  n_steps: 32: 5\n")
    Path("other.yml").write_text("CartPole-v1:\n  policy: MlpPolicy\n  n_timesteps: 100\n  learning_rat: 0.1\n")
    with pytest.raises(SystemExit) as exit_info:
        train.main(argv)
    assert exit_info.value.code == 2
    error_lines = capsys.readouterr().err.strip().splitlines()
    assert error_lines == [error_lines[0]] and error_lines[0].startswith(f"sb3-ext-train: error: {message}")


def test_unwritable_log_folder_is_one_line_before_training(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    Path("blocked").write_text("a file where the log folder should be")
    with pytest.raises(SystemExit) as exit_info:
        train.main(["--algo", "ppo", "--env", "CartPole-v1", "-f", "blocked/logs", *TINY_PPO])
    assert exit_info.value.code == 2
    error_lines = capsys.readouterr().err.strip().splitlines()
    assert error_lines == ["sb3-ext-train: error: --log-folder blocked/logs: cannot write there (Not a directory)"]


def test_enjoy_without_trained_agents_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        enjoy.main(["--algo", "ppo", "--env", "CartPole-v1"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == "sb3-ext-enjoy: error: --folder 'logs': The logs/ppo folder was not found\n"


def test_enjoy_loads_our_off_policy_models_with_a_one_slot_buffer(tmp_path):
    model = TwinDQN("MlpPolicy", "CartPole-v1", buffer_size=5_000, learning_starts=0, seed=0)
    model.learn(50)
    model.save(tmp_path / "twin_dqn")
    register_zoo()
    prepare_replay("twin_dqn")  # what sb3-ext-enjoy does before rl-zoo3's enjoy looks up ALGOS
    try:
        loaded = rl_zoo3.utils.ALGOS["twin_dqn"].load(str(tmp_path / "twin_dqn"))
    finally:
        register_zoo()  # give this test process its classes back
    assert type(loaded) is TwinDQN and loaded.replay_buffer.buffer_size == 1
    observations = model.replay_buffer.observations[:20, 0]
    np.testing.assert_array_equal(
        loaded.predict(observations, deterministic=True)[0], model.predict(observations, deterministic=True)[0]
    )


@pytest.mark.slow
def test_record_video_writes_an_mp4_offline(ppo_run):
    root, _ = ppo_run
    result = run_python(
        ["-m", "sb3_ext.record_video", "--algo", "ppo", "--env", "CartPole-v1", "-n", "20", "-o", "videos"], cwd=root
    )
    assert_ok(result)
    assert list((root / "videos").glob("*.mp4"))
