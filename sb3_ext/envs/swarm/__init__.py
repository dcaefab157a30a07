"""The Swarm2D multi-agent environment and its adapters to Stable-Baselines3."""

from sb3_ext.envs.swarm import swarm2d_v0
from sb3_ext.envs.swarm.swarm2d import Swarm2DEnv

__all__ = ["Swarm2DEnv", "swarm2d_v0"]
