"""``AssistGrid-v0``: the assistance gridworld seen from the robot.

A :class:`~sb3_ext.phase2.env.WorldModelEnv` over :class:`AssistWorld` and the Boltzmann human
prior, built from a named or text map, with text and image rendering. The episode ends
(``terminated``) at ``max_steps``: the step count is part of the state, so the horizon is a
true terminal state of the finite-horizon problem.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import numpy as np

from sb3_ext.envs.assist.goals import make_goals
from sb3_ext.envs.assist.human_prior import BoltzmannHumanPrior
from sb3_ext.envs.assist.maps import MAPS, GridMap
from sb3_ext.envs.assist.world import AssistWorld
from sb3_ext.phase2.env import WorldModelEnv


class AssistGridEnv(WorldModelEnv):
    """``AssistGrid-v0``; ``world`` and ``prior`` are the model Phase 2 plans with.

    :param map_name: one of ``MAPS`` (ignored when ``map_text`` is given)
    :param map_text: a text map (see :mod:`sb3_ext.envs.assist.maps`)
    :param goals: per-human goal spec (see :func:`make_goals`); default: the named map's goals,
        or every floor cell for a text map
    :param max_steps: horizon; default: the named map's, or 8
    :param beta_h: the human prior's inverse temperature
    :param epsilon_h: the human prior's uniform-noise share
    :param goal_resample_prob: per-step probability that a human redraws its goal
    :param render_mode: None, ``"ansi"`` or ``"rgb_array"``
    """

    metadata = {"render_modes": ["ansi", "rgb_array"], "render_fps": 4}  # noqa: RUF012 (a plain attribute in the base class)
    world: AssistWorld

    def __init__(
        self,
        map_name: str = "rock",
        map_text: str | None = None,
        goals: Sequence[Sequence] | None = None,
        max_steps: int | None = None,
        beta_h: float = 10.0,
        epsilon_h: float = 0.1,
        goal_resample_prob: float = 0.0,
        render_mode: str | None = None,
    ):
        if map_text is None:
            if map_name not in MAPS:
                raise ValueError(f"map_name: unknown map {map_name!r}, expected one of {sorted(MAPS)}")
            map_text = MAPS[map_name]["text"]
            if goals is None:
                goals = MAPS[map_name]["goals"]
            if max_steps is None:
                max_steps = MAPS[map_name].get("max_steps")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode: {render_mode!r}, expected None, 'ansi' or 'rgb_array'")
        world = AssistWorld(GridMap.parse(map_text), 8 if max_steps is None else max_steps)
        prior = BoltzmannHumanPrior(world, make_goals(world.grid, goals), beta_h=beta_h, epsilon_h=epsilon_h)
        super().__init__(prior, goal_resample_prob)
        self.render_mode = render_mode

    def render(self) -> str | np.ndarray | None:
        if self.render_mode == "ansi":
            return self.world.render_text(self.state)
        if self.render_mode == "rgb_array":
            return self._image(self.world.render_text(self.state).splitlines()[:-1])
        return None

    # Cell colours of the rgb_array rendering, by map character ("/" is an open door).
    _COLOURS: ClassVar[dict[str, tuple[int, int, int]]] = {
        "#": (90, 90, 90), ".": (245, 245, 245), "R": (40, 90, 220), "H": (240, 170, 30),
        "o": (130, 80, 40), "k": (230, 200, 0), "D": (150, 20, 20), "/": (240, 170, 170),
    }  # fmt: skip

    def _image(self, rows: list[str], cell: int = 16) -> np.ndarray:
        # Several humans are drawn as digits in the text rendering: all get the human colour.
        colours = np.array([[self._COLOURS.get(ch, self._COLOURS["H"]) for ch in row] for row in rows], dtype=np.uint8)
        return np.repeat(np.repeat(colours, cell, axis=0), cell, axis=1)
