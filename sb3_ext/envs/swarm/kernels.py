"""Compiled observation builder of Swarm2D (numba, nopython, cached on disk).

With one arena (the PettingZoo env) the arrays are tiny, so a numpy formulation spends its time
in per-call overhead (sorting, fancy indexing, broadcasting) rather than arithmetic; one loop
over agents does the same work in a few microseconds. The loop performs the same float64
operations in the same order as the numpy formulation it replaced, and the neighbours are
still ranked by ``np.argsort`` (whose order among equal distances a hand-written sort would
not reproduce), so observations are bit-for-bit unchanged (``tests/test_swarm_env.py`` compares it with a numpy formulation).
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def neighbour_distances(
    pos: np.ndarray, res_pos: np.ndarray, active: np.ndarray, agent_distance: np.ndarray, resource_distance: np.ndarray
) -> None:
    """Squared distances from every agent to every other agent (``inf`` to itself) and to every
    active resource (``inf`` to those that left the game), into the two output arrays."""
    b, n = pos.shape[:2]
    for c in range(b):
        for i in range(n):
            for j in range(n):
                dx, dy = pos[c, j, 0] - pos[c, i, 0], pos[c, j, 1] - pos[c, i, 1]
                agent_distance[c, i, j] = dx**2 + dy**2
            agent_distance[c, i, i] = np.inf
            for j in range(res_pos.shape[1]):
                dx, dy = res_pos[c, j, 0] - pos[c, i, 0], res_pos[c, j, 1] - pos[c, i, 1]
                resource_distance[c, i, j] = dx**2 + dy**2 if active[c, j] else np.inf


@njit(cache=True)
def fill_observations(
    obs: np.ndarray,
    pos: np.ndarray,
    vel: np.ndarray,
    holding: np.ndarray,
    team: np.ndarray,
    weight: np.ndarray,
    res_pos: np.ndarray,
    active: np.ndarray,
    owner: np.ndarray,
    count: np.ndarray,
    agent_order: np.ndarray,
    resource_order: np.ndarray,
    hive_pos: np.ndarray,
    arena_size: float,
    max_speed: float,
    n_agent_neighbours: int,
    n_resource_neighbours: int,
) -> None:
    """Write every agent's observation of every copy into the zeroed ``obs`` (layout: see
    :meth:`~sb3_ext.envs.swarm.world.Swarm2DWorld.observations`). ``owner`` and ``count`` are
    flat over ``(copy, resource)``; ``agent_order`` and ``resource_order`` rank every agent's
    neighbours, nearest first."""
    b, n = holding.shape
    r = res_pos.shape[1]
    k = min(n_agent_neighbours, n - 1)
    m = min(n_resource_neighbours, r)
    agent_start = 7
    resource_start = 7 + n_agent_neighbours * 7
    vel_scale = 2 * max_speed
    for c in range(b):
        for i in range(n):
            px, py = pos[c, i, 0] / arena_size, pos[c, i, 1] / arena_size
            vx, vy = vel[c, i, 0] / vel_scale, vel[c, i, 1] / vel_scale
            holds = holding[c, i] >= 0
            load = holding[c, i] if holds else 0
            obs[c, i, 0] = 2.0 * px - 1.0
            obs[c, i, 1] = 2.0 * py - 1.0
            obs[c, i, 2] = 2.0 * vx
            obs[c, i, 3] = 2.0 * vy
            obs[c, i, 4] = holds
            obs[c, i, 5] = holds and weight[load] > 1
            obs[c, i, 6] = holds and count[c * r + load] >= weight[load]

            # The k nearest other agents: relative position and velocity, same team, holding.
            for slot in range(k):
                j = agent_order[c, i, slot]
                at = agent_start + slot * 7
                obs[c, i, at + 0] = pos[c, j, 0] / arena_size - px
                obs[c, i, at + 1] = pos[c, j, 1] / arena_size - py
                obs[c, i, at + 2] = vel[c, j, 0] / vel_scale - vx
                obs[c, i, at + 3] = vel[c, j, 1] / vel_scale - vy
                obs[c, i, at + 4] = team[j] == team[i]
                obs[c, i, at + 5] = holding[c, j] >= 0
                obs[c, i, at + 6] = 1.0

            # The m nearest active resources: relative position, heavy, carried by my team or
            # another one, present; a resource that left the game is all zeros (times 0.0, so
            # the sign of a zero matches the numpy formulation).
            for slot in range(m):
                j = resource_order[c, i, slot]
                at = resource_start + slot * 6
                present = 1.0 if active[c, j] else 0.0
                mine = owner[c * r + j] == team[i]
                obs[c, i, at + 0] = (res_pos[c, j, 0] / arena_size - px) * present
                obs[c, i, at + 1] = (res_pos[c, j, 1] / arena_size - py) * present
                obs[c, i, at + 2] = (1.0 if weight[j] > 1 else 0.0) * present
                obs[c, i, at + 3] = (1.0 if mine else 0.0) * present
                obs[c, i, at + 4] = (1.0 if owner[c * r + j] >= 0 and not mine else 0.0) * present
                obs[c, i, at + 5] = present

            hive = team[i]
            obs[c, i, -2] = (hive_pos[hive, 0] - pos[c, i, 0]) / arena_size
            obs[c, i, -1] = (hive_pos[hive, 1] - pos[c, i, 1]) / arena_size
