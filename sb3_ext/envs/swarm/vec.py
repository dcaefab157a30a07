"""Swarm2D as a VecEnv of agent slots, on the generic multi-agent adapter of :mod:`sb3_ext.multiagent.vec`.

The generic names are re-exported here because earlier versions defined them in this module.
"""

from __future__ import annotations

from stable_baselines3.common.vec_env import VecMonitor

from sb3_ext.envs.swarm.batched import Swarm2DVecEnv
from sb3_ext.multiagent.vec import AgentSlotsVecEnv, agent_slots_of, make_parallel_vec_env, to_agent_slots

__all__ = ["AgentSlotsVecEnv", "agent_slots_of", "make_parallel_vec_env", "make_swarm2d_vec_env", "to_agent_slots"]


def make_swarm2d_vec_env(
    n_copies: int = 1, joint_observation: bool = False, seed: int | None = None, **swarm_kwargs
) -> AgentSlotsVecEnv:
    """Slots over ``n_copies`` Swarm2D arenas stepped together (the fast path for training)."""
    venv = VecMonitor(Swarm2DVecEnv(n_copies, **swarm_kwargs), info_keywords=("delivered",))
    venv.seed(seed)
    return AgentSlotsVecEnv(venv, joint_observation=joint_observation)
