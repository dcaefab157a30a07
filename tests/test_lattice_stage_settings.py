"""One source for each lattice setting: ``stage=N`` on the lattice env ids and the ESS guard, and the
zoo's ``LatticeGrowth-v0`` entries that use it through ``sb3-ext-train`` and plain ``rl_zoo3.train``."""

from __future__ import annotations

import csv
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import yaml

import sb3_ext  # noqa: F401  (registers the env ids)
from sb3_ext import train
from sb3_ext.curriculum.config import DEFAULT_CONFIG_DIR, STAGE_FILES, ConfigError, load_stage_config
from sb3_ext.curriculum.entry_points import stage_env_kwargs
from sb3_ext.curriculum.ess import ESSEarlyStopping
from sb3_ext.envs.lattice.env import LatticeGrowthEnv
from sb3_ext.zoo.config import HYPERPARAMS_DIR, load_hyperparams_file, read_zoo_entry
from zoo_support import assert_ok, run_python

STAGE1 = DEFAULT_CONFIG_DIR / STAGE_FILES[1]


def own_stage_file(tmp_path: Path, **environment) -> Path:
    """Stage 1's file with some ``environment:`` values changed, and ESS guard 0.7 / 3."""
    data = yaml.safe_load(STAGE1.read_text())
    data["environment"].update(environment)
    data.update(ess_threshold=0.7, ess_patience=3)
    path = tmp_path / "my_stage.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def rollout(env: gym.Env, n_steps: int = 5) -> tuple[np.ndarray, list[float]]:
    obs, _ = env.reset(seed=3)
    rewards = []
    for step in range(n_steps):
        action = np.full(env.action_space.shape, 0.5 * (-1) ** step, dtype=np.float32)
        rewards.append(float(env.step(action)[1]))
    return obs, rewards


def test_stage_1_builds_the_stage_files_lattice_with_four_fixed_agents():
    config = load_stage_config(STAGE1).environment
    env = gym.make("LatticeGrowth-v0", stage=1).unwrapped
    assert isinstance(env, LatticeGrowthEnv)
    assert (env.n_swarm, env.max_steps, env.n_proposals) == (config.agents.n_swarm, config.max_steps, config.n_proposals)
    expected = LatticeGrowthEnv(**stage_env_kwargs(STAGE1, "fixed"))
    obs, rewards = rollout(env)
    expected_obs, expected_rewards = rollout(expected)
    np.testing.assert_array_equal(obs, expected_obs)
    assert rewards == expected_rewards


def test_a_stage_file_of_your_own_is_read_and_keyword_arguments_override_it(tmp_path):
    path = own_stage_file(tmp_path, lattice_size=[6, 5, 4], max_steps=7, temperature=550.0)
    env = gym.make("LatticeGrowth-v0", stage=str(path)).unwrapped
    assert (env.engine.nx, env.engine.ny, env.engine.nz, env.max_steps) == (6, 5, 4, 7)
    assert env.engine.physics.temperature == 550.0
    assert gym.make("LatticeGrowth-v0", stage=path, max_steps=9).unwrapped.max_steps == 9
    # LatticeSwarm-v0 takes the same section with an agent on every column.
    swarm = gym.make("LatticeSwarm-v0", stage=path).unwrapped
    assert swarm.observation_space.shape[0] == 6 * 5 and swarm.max_steps == 7


@pytest.mark.parametrize("stage", [4, 0, True, ""])
def test_a_bad_stage_is_one_line(stage):
    with pytest.raises(ConfigError, match=r"^stage: expected a stage number \(1, 2, 3\) or the path of a stage file"):
        gym.make("LatticeGrowth-v0", stage=stage)


def test_a_bad_stage_file_is_named(tmp_path):
    path = tmp_path / "typo.yaml"
    path.write_text(STAGE1.read_text().replace("temperature:", "temprature:"))
    with pytest.raises(ConfigError, match=rf"^{path}: unknown key 'environment.temprature'"):
        gym.make("LatticeGrowth-v0", stage=path)


def test_the_ess_guard_takes_threshold_and_patience_from_the_stage_file(tmp_path):
    path = own_stage_file(tmp_path)
    guard = ESSEarlyStopping(stage=path, check_freq=50)
    assert (guard.threshold, guard.patience, guard.check_freq) == (0.7, 3, 50)
    assert ESSEarlyStopping(patience=5, stage=path).patience == 5  # an explicit value wins
    stage1 = load_stage_config(STAGE1)
    assert (ESSEarlyStopping(stage=1).threshold, ESSEarlyStopping(stage=1).patience) == (
        stage1.ess_threshold,
        stage1.ess_patience,
    )
    assert (ESSEarlyStopping().threshold, ESSEarlyStopping().patience) == (0.3, 10)


@pytest.mark.parametrize("algo", ["ppo", "reinforce"])
def test_the_zoo_entries_name_the_stage_and_repeat_none_of_its_settings(algo):
    entry = read_zoo_entry(algo, "LatticeGrowth-v0")
    assert entry.env_kwargs == {"stage": 1}
    raw = load_hyperparams_file(HYPERPARAMS_DIR / f"{algo}.yml")["LatticeGrowth-v0"]
    stage_keys = set(load_stage_config(STAGE1).to_dict()) - {"n_envs", "total_timesteps", "presets"}
    environment_keys = set(load_stage_config(STAGE1).to_dict()["environment"])
    assert not (set(raw) | set(raw["env_kwargs"])) & (stage_keys | environment_keys)
    if algo == "ppo":
        assert entry.zoo_settings["callback"][1] == {"sb3_ext.callbacks.ESSEarlyStopping": {"stage": 1, "check_freq": 1000}}


def episode_lengths(run_folder: Path) -> list[int]:
    with open(run_folder / "0.monitor.csv", newline="") as file:
        rows = list(csv.DictReader(line for line in file if not line.startswith("#")))
    return [int(row["l"]) for row in rows]


def test_the_lattice_entry_trains_through_sb3_ext_train_and_plain_rl_zoo3(tmp_path, monkeypatch):
    """Both CLIs hand ``env_kwargs`` to ``gymnasium.make``; the episode length shows whose file was read."""
    small = ["-params", "n_envs:1", "n_steps:64", "batch_size:64", "n_epochs:1"]
    common = ["--algo", "ppo", "--env", "LatticeGrowth-v0", "--eval-freq", "-1", "--seed", "0", "--num-threads", "1"]

    monkeypatch.chdir(tmp_path)
    train.main([*common, "-n", "256", "-f", "ours", *small])  # sb3-ext-train, in this process
    assert set(episode_lengths(tmp_path / "ours" / "ppo" / "LatticeGrowth-v0_1")) == {
        load_stage_config(STAGE1).environment.max_steps
    }

    hook = tmp_path / "hook"
    assert_ok(run_python(["-m", "sb3_ext.zoo.custom_envs", str(hook)], cwd=tmp_path))
    path = own_stage_file(tmp_path, max_steps=7)
    plain = run_python(
        ["-m", "rl_zoo3.train", *common, "-n", "128", "-f", "plain", "--conf-file", str(HYPERPARAMS_DIR / "ppo.yml"),
         "--env-kwargs", f"stage:'{path}'", *small],
        cwd=tmp_path,
        pythonpath=(hook,),
    )  # fmt: skip
    assert_ok(plain)
    lengths = episode_lengths(tmp_path / "plain" / "ppo" / "LatticeGrowth-v0_1")
    assert len(lengths) >= 10 and set(lengths) == {7}
