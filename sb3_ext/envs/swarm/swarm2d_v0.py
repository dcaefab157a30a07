"""``swarm2d_v0``, importable the PettingZoo way: ``swarm2d_v0.parallel_env(**kwargs)``."""

from __future__ import annotations

from pettingzoo.utils import parallel_to_aec
from pettingzoo.utils.env import AECEnv

from sb3_ext.envs.swarm.swarm2d import Swarm2DEnv


def parallel_env(**kwargs) -> Swarm2DEnv:
    """The parallel environment (see :class:`Swarm2DEnv` for the keyword arguments)."""
    return Swarm2DEnv(**kwargs)


def env(**kwargs) -> AECEnv:
    """The same game as an AEC (agent-by-agent) environment."""
    return parallel_to_aec(Swarm2DEnv(**kwargs))


raw_env = parallel_env

__all__ = ["env", "parallel_env", "raw_env"]
