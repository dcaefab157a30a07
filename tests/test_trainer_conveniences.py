"""Trainer conveniences: early stopping in RunArtifacts, --config FILE, eval/checkpoint frequencies, --track."""

from __future__ import annotations

import argparse
import importlib
import json

import numpy as np
import pytest
import yaml
from curriculum_fakes import one_torch_thread  # noqa: F401 - autouse fixture
from stable_baselines3 import PPO
from test_curriculum_runner import _tiny_configs

from sb3_ext.callbacks import RunArtifacts
from sb3_ext.common.options_file import options_file_arguments, parse_with_options_file
from sb3_ext.common.tracking import start_tracking
from sb3_ext.curriculum.cli import build_parser, main
from sb3_ext.curriculum.config import STAGE_FILES


def expected_stop(rewards: list[float], patience: int) -> int:
    """Index of the evaluation that makes more than ``patience`` in a row without beating the best (by hand)."""
    best, misses = -np.inf, 0
    for index, reward in enumerate(rewards):
        if reward > best:
            best, misses = reward, 0
        else:
            misses += 1
            if misses > patience:
                return index
    return -1


def test_run_artifacts_stops_after_patience_evaluations_without_improvement(tmp_path):
    # learning_rate 0: the policy never changes, so evaluations only differ by their episodes.
    model = PPO("MlpPolicy", "CartPole-v1", n_steps=32, batch_size=32, n_epochs=1, learning_rate=0.0, seed=0)
    artifacts = RunArtifacts(str(tmp_path), eval_env="CartPole-v1", eval_freq=32, n_eval_episodes=2, patience=2,
                             checkpoint_freq=10**9)
    model.learn(32 * 40, callback=artifacts)
    evaluations = json.loads((tmp_path / "metrics.json").read_text())["eval/mean_reward"]
    stop = expected_stop(evaluations["values"], patience=2)
    assert stop >= 0, "the test needs a run that stops"
    assert len(evaluations["values"]) == stop + 1  # no evaluation after the stop
    assert artifacts.stopped_early_at == evaluations["steps"][stop] == model.num_timesteps
    assert model.num_timesteps < 32 * 40


def test_patience_needs_an_evaluation_env(tmp_path):
    with pytest.raises(ValueError, match="patience=3 needs an eval_env"):
        RunArtifacts(str(tmp_path), patience=3)


def test_options_file_is_read_as_flags_before_the_command_line(tmp_path):
    options = tmp_path / "run.yaml"
    options.write_text(yaml.safe_dump({"eval_freq": 5000, "checkpoint-freq": 20000, "progress": False, "seed": 4,
                                       "track": True}, sort_keys=False))
    parser = build_parser()
    assert options_file_arguments(options, parser) == [
        "--eval-freq", "5000", "--checkpoint-freq", "20000", "--no-progress", "--seed", "4", "--track"]
    args = parse_with_options_file(parser, ["--config", str(options), "--seed", "7"])
    assert (args.eval_freq, args.checkpoint_freq, args.progress, args.seed, args.track) == (5000, 20000, False, 7, True)


@pytest.mark.parametrize("content, message", [
    ({"eval_frq": 10}, "unknown option 'eval_frq'"),
    ({"progress": "yes"}, "progress is a switch; expected true or false"),
    ({"seed": [1, 2]}, "seed takes one value"),
    ([1, 2], "expected a mapping"),
])
def test_bad_options_file_is_one_line_naming_file_and_key(tmp_path, capsys, content, message):
    options = tmp_path / "run.yaml"
    options.write_text(yaml.safe_dump(content))
    with pytest.raises(SystemExit) as stop:
        parse_with_options_file(build_parser(), ["--config", str(options)])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"--config {options}: {message}" in err


def test_curriculum_cli_takes_frequencies_from_a_config_file(tmp_path, capsys):
    """Through the real CLI: checkpoints and evaluations land at the configured step counts."""
    config_dir = tmp_path / "stages"
    config_dir.mkdir()
    # the four-agent setup: one step per env step, so the frequencies below are plain env steps
    fixed = {"environment": {"agents": {"mode": "fixed"}}}
    for stage, config in _tiny_configs({1: fixed, 2: fixed, 3: fixed}).items():
        (config_dir / STAGE_FILES[stage]).write_text(yaml.safe_dump(config.to_dict()))
    options = tmp_path / "run.yaml"
    options.write_text(yaml.safe_dump({"config_dir": str(config_dir), "output": str(tmp_path / "runs"), "stage": 1,
                                       "progress": False, "vec_env": "dummy", "eval_freq": 16, "checkpoint_freq": 32,
                                       "eval_episodes": 1}))
    assert main(["--config", str(options)]) == 0
    (run_dir,) = (tmp_path / "runs").iterdir()
    stage_dir = run_dir / "stage1"
    checkpoints = sorted(path.name for path in (stage_dir / "checkpoints").glob("checkpoint_*.zip"))
    assert checkpoints == ["checkpoint_32.zip", "checkpoint_64.zip"]
    evaluations = json.loads((stage_dir / "metrics.json").read_text())["eval/mean_reward"]["steps"]
    assert evaluations == [16, 32, 48, 64]


def test_start_tracking_without_wandb_is_one_clear_error(monkeypatch, tmp_path):
    real_import = importlib.import_module

    def no_wandb(name, *args):
        if name == "wandb":
            raise ImportError("No module named 'wandb'")
        return real_import(name, *args)

    monkeypatch.setattr(importlib, "import_module", no_wandb)
    with pytest.raises(ValueError, match=r"pip install 'sb3-ext\[track\]'"):
        start_tracking(tmp_path, "project")


def test_tracking_mirrors_tensorboard_scalars_offline(tmp_path, monkeypatch):
    wandb = pytest.importorskip("wandb", reason="the [track] extra is not installed")
    monkeypatch.setenv("WANDB_SILENT", "true")
    run = start_tracking(tmp_path, "sb3-ext-test", config={"marker": "tracked-config"})
    PPO("MlpPolicy", "CartPole-v1", n_steps=32, batch_size=32, n_epochs=1, tensorboard_log=str(tmp_path / "tb"),
        seed=0).learn(64)
    run.finish()
    wandb.teardown()  # waits for W&B's service process to write the run's records
    (run_file,) = (tmp_path / "wandb").glob("offline-run-*/*.wandb")
    records = run_file.read_bytes()  # W&B's offline transaction log: the synced keys appear in it verbatim
    assert b"train/learning_rate" in records and b"tracked-config" in records


def test_unknown_tracking_mode_is_refused(tmp_path):
    with pytest.raises(ValueError, match="tracking mode 'cloud'"):
        start_tracking(tmp_path, "project", mode="cloud")


def test_frequencies_must_be_positive(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--eval-freq", "0"])
    assert "expected a positive integer, got 0" in capsys.readouterr().err
    assert isinstance(build_parser(), argparse.ArgumentParser)
