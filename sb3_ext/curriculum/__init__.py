"""The lattice curriculum: stage files, the stage runner and its command line.

``python experiments/train_policy.py --stage all`` trains PPO on LatticeGrowth-v0 through three
stages of growing lattices, each starting from the previous stage's final model with its own
PPO settings.
"""

from sb3_ext.curriculum.config import ConfigError, StageConfig, load_stage_config, load_stage_configs

__all__ = ["ConfigError", "StageConfig", "load_stage_config", "load_stage_configs"]
