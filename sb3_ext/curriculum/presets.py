"""Budget presets and command-line overrides, applied on top of the stage files.

Overrides are nested dicts in the stage-file layout; the merged result is validated by the same
strict loader as the files, so a preset cannot produce a configuration a file could not.
"""

from __future__ import annotations

from typing import Any

from sb3_ext.curriculum.config import ConfigError, StageConfig, stage_config_from_dict

#: ``--preset quick``: all three stages in a few minutes on 2 cores while still learning.
#: Budgets count agent-steps (one per agent and lattice step): stage 1 gets 16 rollouts of
#: 32 steps x 2 lattices x 64 agents, stages 2 and 3 continue from it with a few rollouts each.
PRESETS: dict[str, dict[int, dict[str, Any]]] = {
    "quick": {
        1: {"total_timesteps": 65_536, "n_envs": 2},
        2: {"total_timesteps": 51_200, "n_envs": 2},
        3: {"total_timesteps": 40_000, "n_envs": 1},
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
    overrides = PRESETS[name].get(stage, {})
    if config.algo != "ppo":  # the preset's PPO settings do not apply to a stage of another algorithm
        overrides = {key: value for key, value in overrides.items() if key != "ppo"}
    return override(config, overrides, f"preset {name!r}, stage {stage}")


def apply_preset_to_stages(name: str, configs: dict[int, StageConfig]) -> dict[int, StageConfig]:
    """Apply preset ``name`` to every stage of ``configs`` (keyed by stage number)."""
    return {stage: apply_preset(name, stage, config) for stage, config in configs.items()}
