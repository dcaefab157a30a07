"""sb3-ext-train / sb3-ext-enjoy: rl-zoo3's flags and layout, our defaults, one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import rl_zoo3
from stable_baselines3 import DQN

from sb3_ext import enjoy, train
from sb3_ext.zoo.cli import SmallBufferLoader
from sb3_ext.zoo.config import default_conf_file
from zoo_support import assert_ok, run_python

TINY_PPO = ["-params", "n_envs:1", "n_steps:32", "batch_size:32", "n_epochs:1"]


@pytest.fixture(scope="module")
def ppo_run(tmp_path_factory):
    """PPO on CartPole-v1 through ``python -m sb3_ext.train`` (our ppo.yml has no CartPole entry,
    so the hyperparameters come from rl-zoo3's own file), then ``python -m sb3_ext.enjoy``."""
    root = tmp_path_factory.mktemp("ppo_run")
    common = ["--algo", "ppo", "--env", "CartPole-v1", "--num-threads", "1"]
    trained = run_python(
        ["-m", "sb3_ext.train", *common, "-n", "64", "-f", "logs", "-tb", "tb", "--eval-freq", "-1", "--seed", "0",
         *TINY_PPO],
        cwd=root,
    )  # fmt: skip
    assert_ok(trained)
    enjoyed = run_python(["-m", "sb3_ext.enjoy", *common, "-n", "30", "--no-render"], cwd=root)
    return root, trained, enjoyed


def test_train_writes_the_zoo_layout_from_rl_zoo3_hyperparameters(ppo_run):
    root, trained, _ = ppo_run
    run = root / "logs" / "ppo" / "CartPole-v1_1"
    assert (run / "CartPole-v1.zip").is_file()
    assert (run / "0.monitor.csv").is_file()
    assert {p.name for p in (run / "CartPole-v1").iterdir()} >= {"args.yml", "config.yml", "command.txt"}
    assert f"Loading hyperparameters from: {Path(rl_zoo3.__file__).parent / 'hyperparams' / 'ppo.yml'}" in trained.stdout
    assert list((root / "tb" / "CartPole-v1" / "PPO_1").glob("events.out.tfevents.*"))


def test_enjoy_finds_the_agent_in_logs_by_default(ppo_run):
    root, _, enjoyed = ppo_run
    assert_ok(enjoyed)
    assert "Loading logs/ppo/CartPole-v1_1/CartPole-v1.zip" in enjoyed.stdout


def test_conf_file_falls_back_to_rl_zoo3_for_envs_ours_lacks():
    assert default_conf_file("ppo", "CartPole-v1") == Path(rl_zoo3.__file__).parent / "hyperparams" / "ppo.yml"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--algo", "ppo", "--env", "CartPol-v1"], "--env 'CartPol-v1': not a registered environment id; did you mean 'CartPole-v1'?"),
        (["--algo", "ppo", "--env", "CartPole-v1", "-params", "n_step:8"], "--hyperparams: unknown hyperparameter 'n_step' for PPO; did you mean 'n_steps'?"),
        (["--algo", "ppo", "--env", "CartPole-v1", "--conf-file", "missing.yml"], "missing.yml: hyperparameter file not found"),
        (["--algo", "ppo", "--env", "CartPole-v1", "--conf-file", "broken.yml"], "broken.yml: invalid YAML at line 2"),
        (["--algo", "ppo", "--env", "Pendulum-v1", "--conf-file", "other.yml"], "other.yml: no entry for 'Pendulum-v1' (it has: CartPole-v1)"),
        (["--algo", "ppo", "--env", "CartPole-v1", "--conf-file", "other.yml"], "other.yml: entry 'CartPole-v1': unknown hyperparameter 'learning_rat' for PPO; did you mean 'learning_rate'?"),
        (["--algo", "ppo", "-optimize", "--storage", "study.db"], "--storage 'study.db': expected a journal file ending in '.log' or a database URL"),
        (["--algo", "ppo", "--trial-id", "3"], "--trial-id needs --storage and --study-name"),
        (["--algo", "ppo", "--storage", "s.log", "--study-name", "none", "--trial-id", "0"], "--study-name 'none': no such study in s.log"),
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


def test_enjoy_without_trained_agents_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        enjoy.main(["--algo", "ppo", "--env", "CartPole-v1"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == "sb3-ext-enjoy: error: --folder 'logs': no trained ppo agents in logs/ppo\n"


def test_replay_loader_gives_off_policy_models_a_one_slot_buffer(tmp_path):
    model = DQN("MlpPolicy", "CartPole-v1", buffer_size=5_000, learning_starts=0, seed=0)
    model.learn(50)
    model.save(tmp_path / "dqn")
    loaded = SmallBufferLoader(DQN).load(str(tmp_path / "dqn"))
    assert loaded.replay_buffer.buffer_size == 1
    observations = model.replay_buffer.observations[:20, 0]
    assert (loaded.predict(observations, deterministic=True)[0] == model.predict(observations, deterministic=True)[0]).all()


@pytest.mark.slow
def test_record_video_writes_an_mp4_offline(ppo_run):
    root, _, _ = ppo_run
    result = run_python(
        ["-m", "sb3_ext.record_video", "--algo", "ppo", "--env", "CartPole-v1", "-n", "20", "-o", "videos"], cwd=root
    )
    assert_ok(result)
    assert list((root / "videos").glob("*.mp4"))
