"""A top-down RGB picture of one Swarm2D arena, drawn with numpy (no graphics dependency).

Hives are pale discs in their team's colour, resources grey squares (heavy ones darker and
larger, tinted with the team colour while carried), agents dots in their team's colour.
"""

from __future__ import annotations

import numpy as np

from sb3_ext.envs.swarm.world import Swarm2DWorld

_TEAM_COLOURS = np.array([[31, 119, 180], [214, 39, 40], [44, 160, 44], [148, 103, 189], [255, 127, 14]])


def render_arena(world: Swarm2DWorld, copy: int = 0, size: int = 256) -> np.ndarray:
    """``(size, size, 3)`` uint8 image of arena ``copy`` of ``world``."""
    c = world.config
    image = np.full((size, size, 3), 255, dtype=np.uint8)
    pixel = (np.arange(size) + 0.5) * c.arena_size / size
    xs, ys = np.meshgrid(pixel, pixel[::-1])  # row 0 at the top of the arena

    def disc(centre: np.ndarray, radius: float, colour: np.ndarray) -> None:
        image[(xs - centre[0]) ** 2 + (ys - centre[1]) ** 2 <= radius**2] = colour

    def square(centre: np.ndarray, half: float, colour: np.ndarray) -> None:
        image[(np.abs(xs - centre[0]) <= half) & (np.abs(ys - centre[1]) <= half)] = colour

    colours = _TEAM_COLOURS[np.arange(c.num_teams) % len(_TEAM_COLOURS)]
    for team, hive in enumerate(world.hive_pos):
        disc(hive, c.hive_radius, (255 + colours[team]) // 2)
    holders = world.holding[copy]
    for resource in np.flatnonzero(world.active[copy]):
        carriers = np.flatnonzero(holders == resource)
        heavy = world.weight[resource] > 1
        colour = np.array([90, 90, 90] if heavy else [150, 150, 150])
        if len(carriers):
            colour = (colour + colours[world.team[carriers[0]]]) // 2
        square(world.res_pos[copy, resource], (0.02 if heavy else 0.014) * c.arena_size, colour)
    for agent, position in enumerate(world.pos[copy]):
        disc(position, 0.012 * c.arena_size, colours[world.team[agent]])
    return image
