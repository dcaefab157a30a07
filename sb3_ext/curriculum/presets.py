"""Budget presets and command-line overrides, applied on top of the stage files.

Overrides are nested dicts in the stage-file layout; the merged result is validated by the same
strict loader as the files, so a preset cannot produce a configuration a file could not.
"""

from __future__ import annotations

from typing import Any

from sb3_ext.curriculum.config import ConfigError, StageConfig, stage_config_from_dict

#: ``--preset quick``: all three stages in a few minutes on 2 cores while still learning.
#: Shorter rollouts (n_steps) give PPO enough updates within the small budgets.
PRESETS: dict[str, dict[int, dict[str, Any]]] = {
    "quick": {
        1: {
            "total_timesteps": 49_152,
            "n_envs": 4,
            "ppo": {"n_steps": 512, "batch_size": 128, "n_epochs": 10, "learning_rate": 1.0e-3},
        },
        2: {"total_timesteps": 8_192, "n_envs": 4, "ppo": {"n_steps": 256, "batch_size": 128, "n_epochs": 10}},
        3: {"total_timesteps": 4_096, "n_envs": 2, "ppo": {"n_steps": 512, "batch_size": 128, "n_epochs": 10}},
    },
}


def merge(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Recursively merge ``overrides`` into a copy of ``base`` (mappings merge, other values replace)."""
    merged = dict(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def override(config: StageConfig, overrides: dict[str, Any], where: str) -> StageConfig:
    """Return ``config`` with ``overrides`` applied and re-validated (errors name ``where``)."""
    return stage_config_from_dict(merge(config.to_dict(), overrides), where)


def apply_preset(name: str, stage: int, config: StageConfig) -> StageConfig:
    """Apply preset ``name``'s overrides for ``stage``."""
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r} (expected one of: {', '.join(PRESETS)})")
    return override(config, PRESETS[name].get(stage, {}), f"preset {name!r}, stage {stage}")


def apply_preset_to_stages(name: str, configs: dict[int, StageConfig]) -> dict[int, StageConfig]:
    """Apply preset ``name`` to every stage of ``configs`` (keyed by stage number)."""
    return {stage: apply_preset(name, stage, config) for stage, config in configs.items()}
