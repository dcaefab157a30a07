"""``swarm2d_v0``, importable the PettingZoo way: ``swarm2d_v0.parallel_env(**kwargs)``."""

from __future__ import annotations

from pettingzoo.utils import parallel_to_aec
from pettingzoo.utils.env import AECEnv

from sb3_ext.envs.swarm.swarm2d import Swarm2DEnv
from sb3_ext.multiagent.joint import ParallelJointEnv


def parallel_env(**kwargs) -> Swarm2DEnv:
    """The parallel environment (see :class:`Swarm2DEnv` for the keyword arguments)."""
    return Swarm2DEnv(**kwargs)


def env(**kwargs) -> AECEnv:
    """The same game as an AEC (agent-by-agent) environment."""
    return parallel_to_aec(Swarm2DEnv(**kwargs))


raw_env = parallel_env

__all__ = ["env", "joint_env", "parallel_env", "raw_env"]


def joint_env(**kwargs) -> ParallelJointEnv:
    """The game as one gymnasium env holding every agent: the entry point of the id ``Swarm2D-v0``."""
    return ParallelJointEnv(Swarm2DEnv(**kwargs))
