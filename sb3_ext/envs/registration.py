"""Gymnasium registration of the package's single-agent environments.

Entry points are strings, so registering imports nothing heavy; the environment module is
imported by ``gymnasium.make`` on first use.
"""

from __future__ import annotations

import gymnasium as gym

_ENTRY_POINTS: dict[str, str] = {
    # The lattice envs' constructors, which also take `stage=N` (a curriculum stage file's settings).
    "LatticeGrowth-v0": "sb3_ext.curriculum.entry_points:lattice_growth",
    # One agent per column, as a joint multi-agent env; the curriculum unfolds it with AgentSlotsVecEnv.
    "LatticeSwarm-v0": "sb3_ext.curriculum.entry_points:lattice_swarm",
    "AssistGrid-v0": "sb3_ext.envs.assist.env:AssistGridEnv",
    # All agents of swarm2d_v0 as one joint env; rl-zoo3 unfolds it with AgentSlotsVecEnv.
    "Swarm2D-v0": "sb3_ext.envs.swarm.swarm2d_v0:joint_env",
}


def register_envs() -> None:
    """Register every environment id once; calling it again is harmless."""
    for env_id, entry_point in _ENTRY_POINTS.items():
        if env_id not in gym.registry:
            gym.register(id=env_id, entry_point=entry_point)
