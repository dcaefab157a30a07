"""The lattice curriculum: stage files, the stage runner and its command line.

``sb3-ext-curriculum --stage all`` (or ``python experiments/train_policy.py``) trains PPO on LatticeGrowth-v0 through three
stages of growing lattices, each starting from the previous stage's final model with its own
PPO settings.
"""

from sb3_ext.curriculum.config import (
    ConfigError,
    StageConfig,
    load_stage_config,
    load_stage_configs,
)

__all__ = ["ConfigError", "StageConfig", "load_stage_config", "load_stage_configs"]
