"""Presets and command-line overrides, applied on top of the stage files.

A preset lives in the stage files it changes (their ``presets:`` section), beside the settings it
overrides, so every curriculum setting is read from one file. Overrides are nested dicts in the
stage-file layout; the merged result is validated by the same strict loader as the files, so a
preset cannot produce a configuration a file could not.
"""

from __future__ import annotations

from typing import Any

from sb3_ext.curriculum.config import ConfigError, StageConfig, merge, preset_overrides, stage_config_from_dict


def override(config: StageConfig, overrides: dict[str, Any], where: str) -> StageConfig:
    """Return ``config`` with ``overrides`` applied and re-validated (errors name ``where``)."""
    return stage_config_from_dict(merge(config.to_dict(), overrides), where)


def apply_preset(name: str, stage: int, config: StageConfig) -> StageConfig:
    """Apply preset ``name`` of ``stage``'s file (its ``ppo:`` part only to a PPO stage)."""
    if name not in config.presets:
        known = ", ".join(sorted(config.presets)) or "none"
        raise ConfigError(f"unknown preset {name!r} for stage {stage} (its stage file has: {known})")
    return override(config, preset_overrides(config.presets[name], config.algo), f"preset {name!r}, stage {stage}")


def apply_preset_to_stages(name: str, configs: dict[int, StageConfig]) -> dict[int, StageConfig]:
    """Apply preset ``name`` to every stage of ``configs`` (keyed by stage number)."""
    return {stage: apply_preset(name, stage, config) for stage, config in configs.items()}
