"""Stage files: the shipped values, and one-line errors for every kind of bad input."""

import re
from pathlib import Path

import pytest
import yaml

from sb3_ext.curriculum.config import DEFAULT_CONFIG_DIR, ConfigError, load_stage_config, load_stage_configs
from sb3_ext.curriculum.presets import apply_preset, override

CONFIGS = DEFAULT_CONFIG_DIR


def test_shipped_stage_files_have_the_issue_values():
    configs = load_stage_configs(CONFIGS)
    expected = {1: ((8, 8, 5), 100, 4), 2: ((20, 20, 10), 200, 24), 3: ((50, 50, 20), 500, 100)}
    for stage, (lattice, max_steps, n_proposals) in expected.items():
        config = configs[stage]
        env = config.environment
        assert env.lattice_size == lattice and env.max_steps == max_steps
        assert env.n_proposals == n_proposals  # tuned so that episodes do not fill the film
        assert (env.temperature, env.deposition_rate, env.patch_radius) == (600.0, 1.0, 2)
        # the swarm that covers the lattice is the default; the four-agent setup stays configured
        assert (env.agents.mode, env.agents.density, env.agents.n_swarm) == ("per_column", 1.0, 4)
        assert env.env_id == "LatticeSwarm-v0" and env.env_kwargs()["agent_density"] == 1.0
        weights = env.reward_weights
        assert (weights.roughness_weight, weights.coverage_weight, weights.ratio_weight, weights.ess_weight) == (
            -1.0,
            0.5,
            -0.3,
            -0.1,
        )
        assert (config.ess_threshold, config.ess_patience) == (0.3, 10)
    # each stage has its own PPO settings
    assert len({configs[stage].ppo for stage in configs}) == 3


def test_fixed_mode_configures_the_four_agent_env(tmp_path):
    path = _write_variant(tmp_path, lambda d: d["environment"]["agents"].update(mode="fixed"))
    env = load_stage_config(path).environment
    assert env.env_id == "LatticeGrowth-v0"
    kwargs = env.env_kwargs()
    assert kwargs["n_swarm"] == 4 and "agent_density" not in kwargs and kwargs["reward_weights"]["ess_weight"] == -0.1


def _write_variant(tmp_path: Path, edit) -> Path:
    data = yaml.safe_load((CONFIGS / "stage1_small.yaml").read_text())
    data["ppo"]["learning_rate"] = 0.0003  # safe_load reads 3.0e-4 fine; keep it a float
    edit(data)
    path = tmp_path / "stage1_small.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda d: d["ppo"].update(learnig_rate=1e-3), "unknown key 'ppo.learnig_rate'"),
        (lambda d: d.update(extra=1), "unknown key 'extra'"),
        (
            lambda d: d["environment"]["reward_weights"].update(speed_weight=1.0),
            "unknown key 'environment.reward_weights.speed_weight'",
        ),
        (lambda d: d["ppo"].pop("gamma"), "missing key 'ppo.gamma'"),
        (lambda d: d["ppo"].update(n_steps="2048"), "ppo.n_steps: expected an integer, got str '2048'"),
        (lambda d: d["ppo"].update(n_steps=2048.0), "ppo.n_steps: expected an integer, got float 2048.0"),
        (lambda d: d.update(n_envs=True), "n_envs: expected an integer, got bool True"),
        (lambda d: d["ppo"].update(ent_coef="a lot"), "ppo.ent_coef: expected a finite number"),
        (lambda d: d["environment"].update(lattice_size=[8, 8]), "environment.lattice_size: expected a list of 3 integers"),
        (lambda d: d["environment"].update(lattice_size=[8, 8, 2]), "environment.lattice_size: expected three sizes >= 3"),
        (lambda d: d["ppo"].update(gamma=1.5), "ppo.gamma: expected in (0, 1]"),
        (lambda d: d.update(total_timesteps=0), "total_timesteps: expected > 0"),
        (lambda d: d.update(environment=[1, 2]), "environment: expected a mapping"),
        (
            lambda d: d["environment"]["agents"].update(mode="everywhere"),
            "environment.agents.mode: expected 'per_column' or 'fixed'",
        ),
        (lambda d: d["environment"]["agents"].update(density=1.5), "environment.agents.density: expected in (0, 1]"),
        (lambda d: d["environment"]["agents"].update(mode=1), "environment.agents.mode: expected a string"),
        (lambda d: d["environment"]["agents"].update(n_swarm=65), "environment.agents.n_swarm: expected at most nx * ny = 64"),
        (lambda d: d["environment"]["local_reward"].update(ess_cost=-1.0), "environment.local_reward.ess_cost: expected >= 0"),
    ],
)
def test_bad_keys_and_types_give_one_line_naming_file_and_key(tmp_path, edit, expected):
    path = _write_variant(tmp_path, edit)
    with pytest.raises(ConfigError) as error:
        load_stage_config(path)
    message = str(error.value)
    assert expected in message
    assert message.startswith(str(path))
    assert "\n" not in message


def test_yaml_problems_are_reported_with_the_file(tmp_path):
    duplicate = tmp_path / "dup.yaml"
    duplicate.write_text((CONFIGS / "stage1_small.yaml").read_text() + "n_envs: 2\n")
    with pytest.raises(ConfigError, match=r"dup.yaml: duplicate key 'n_envs' \(line \d+\)"):
        load_stage_config(duplicate)
    broken = tmp_path / "broken.yaml"
    broken.write_text("environment: [1, 2\nppo: {}\n")
    with pytest.raises(ConfigError, match=r"broken.yaml: invalid YAML at line \d+"):
        load_stage_config(broken)
    with pytest.raises(ConfigError, match=r"missing\.yaml: stage file not found"):
        load_stage_config(tmp_path / "missing.yaml")


def test_exponent_floats_without_a_dot_are_numbers(tmp_path):
    # Plain PyYAML reads "3e-4" as a string; the stage loader must not.
    text = (CONFIGS / "stage1_small.yaml").read_text()
    text = re.sub(r"learning_rate: [^\s]+", "learning_rate: 3e-4", text)
    path = tmp_path / "stage1_small.yaml"
    path.write_text(text)
    assert load_stage_config(path).ppo.learning_rate == pytest.approx(3e-4)
    assert yaml.safe_load("x: 3e-4")["x"] == "3e-4"  # the global SafeLoader is left alone


def test_presets_and_overrides_are_validated_like_files():
    configs = load_stage_configs(CONFIGS)
    for stage, config in configs.items():
        assert set(config.presets) == {"quick"}  # the presets live in the stage files
        for name in config.presets:
            quick = apply_preset(name, stage, config)
            assert quick.total_timesteps < config.total_timesteps
            assert quick.environment.lattice_size == config.environment.lattice_size
    with pytest.raises(ConfigError, match=r"--n-envs: n_envs: expected > 0, got 0"):
        override(configs[1], {"n_envs": 0}, "--n-envs")
    with pytest.raises(ConfigError, match=r"unknown preset 'slow' for stage 1 .its stage file has: quick."):
        apply_preset("slow", 1, configs[1])


def test_a_chain_whose_policy_input_changes_is_refused_at_read_time(tmp_path):
    for stage_file in CONFIGS.glob("*.yaml"):
        (tmp_path / stage_file.name).write_text(stage_file.read_text())
    stage2 = tmp_path / "stage2_medium.yaml"
    stage2.write_text(stage2.read_text().replace("patch_radius: 2", "patch_radius: 3"))
    with pytest.raises(ConfigError) as error:
        load_stage_configs(tmp_path)
    message = str(error.value)
    assert message.startswith(f"{stage2}: environment.patch_radius: expected 2") and "\n" not in message


def test_a_bad_preset_fails_when_its_file_is_read(tmp_path):
    text = (CONFIGS / "stage1_small.yaml").read_text().replace("total_timesteps: 65_536", "total_timesteps: 0")
    path = tmp_path / "stage1_small.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=r"stage1_small.yaml: presets.quick: total_timesteps: expected > 0, got 0"):
        load_stage_config(path)
    assert load_stage_config(CONFIGS / "stage1_small.yaml").presets["quick"]["total_timesteps"] == 65_536
