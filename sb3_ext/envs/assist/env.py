"""``AssistGrid-v0``: the assistance gridworld seen from the robot.

The agent is the robot; the humans act inside ``step`` from the goal-conditioned prior, each
pursuing a goal drawn (by weight) at reset and redrawn with probability ``goal_resample_prob``
per step. The robot never sees the goals. The reward counts humans reaching their current goal
for the first time in the episode; it is for monitoring only, Phase 2 learns from the world
model instead. The episode ends (``terminated``) at ``max_steps``: the step count is part of
the state, so the horizon is a true terminal state of the finite-horizon problem.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from sb3_ext.envs.assist.goals import make_goals
from sb3_ext.envs.assist.human_prior import BoltzmannHumanPrior
from sb3_ext.envs.assist.maps import MAPS, GridMap
from sb3_ext.envs.assist.world import N_ACTIONS, AssistWorld, GridState


class AssistGridEnv(gym.Env):
    """Gymnasium env over :class:`AssistWorld`; ``world`` and ``prior`` are the model Phase 2 plans with.

    :param map_name: one of ``MAPS`` (ignored when ``map_text`` is given)
    :param map_text: a text map (see :mod:`sb3_ext.envs.assist.maps`)
    :param goals: per-human goal spec (see :func:`make_goals`); default: the named map's goals,
        or every floor cell for a text map
    :param max_steps: horizon
    :param beta_h: the human prior's inverse temperature
    :param epsilon_h: the human prior's uniform-noise share
    :param goal_resample_prob: per-step probability that a human redraws its goal
    """

    metadata = {"render_modes": ["ansi", "rgb_array"], "render_fps": 4}

    def __init__(
        self,
        map_name: str = "rock",
        map_text: str | None = None,
        goals: Sequence[Sequence] | None = None,
        max_steps: int = 8,
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
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode: {render_mode!r}, expected None, 'ansi' or 'rgb_array'")
        self.world = AssistWorld(GridMap.parse(map_text), max_steps)
        self.goals = make_goals(self.world.grid, goals)
        self.prior = BoltzmannHumanPrior(self.world, self.goals, beta_h=beta_h, epsilon_h=epsilon_h)
        self.goal_resample_prob = goal_resample_prob
        self.render_mode = render_mode
        self.observation_space = spaces.Box(0.0, 1.0, shape=(self.world.obs_dim,), dtype=np.float32)
        self.action_space = spaces.Discrete(N_ACTIONS)
        self._goal_ids: list[int] = []
        self._reached: list[bool] = []

    @property
    def goal_resample_prob(self) -> float:
        return self._goal_resample_prob

    @goal_resample_prob.setter
    def goal_resample_prob(self, value: float) -> None:
        # A property so that Phase 2 can set it through ``VecEnv.set_attr`` and still be checked.
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"goal_resample_prob: {value} must be in [0, 1]")
        self._goal_resample_prob = float(value)

    def _draw_goal(self, human: int) -> int:
        weights = np.array([g.weight for g in self.goals[human]])
        return int(self.np_random.choice(len(weights), p=weights / weights.sum()))

    def _info(self, state: GridState) -> dict[str, Any]:
        return {"state": state, "goals": tuple(self._goal_ids), "goals_reached": tuple(self._reached)}

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        state = self.world.initial_state()
        self.world.set_state(state)
        self._goal_ids = [self._draw_goal(h) for h in range(self.world.n_humans)]
        self._reached = [self.goals[h][g].is_achieved(state) for h, g in enumerate(self._goal_ids)]
        return self.world.encode(state), self._info(state)

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict]:
        if not self.action_space.contains(action):
            raise ValueError(f"action: {action!r}, expected an integer in [0, {N_ACTIONS - 1}]")
        state = self.world.get_state()
        for h in range(self.world.n_humans):
            if self.np_random.random() < self._goal_resample_prob:
                new_goal = self._draw_goal(h)
                if new_goal != self._goal_ids[h]:
                    self._goal_ids[h] = new_goal
                    self._reached[h] = self.goals[h][new_goal].is_achieved(state)
        human_actions = [
            int(self.np_random.choice(N_ACTIONS, p=self.prior.action_probs(state, self.goals[h][g])))
            for h, g in enumerate(self._goal_ids)
        ]
        next_state = self.world.sample_step(state, (int(action), *human_actions), self.np_random)
        self.world.set_state(next_state)
        reward = 0.0
        for h, g in enumerate(self._goal_ids):
            if not self._reached[h] and self.goals[h][g].is_achieved(next_state):
                self._reached[h] = True
                reward += 1.0
        terminated = self.world.is_terminal(next_state)
        return self.world.encode(next_state), reward, terminated, False, self._info(next_state)

    def render(self) -> str | np.ndarray | None:
        if self.render_mode == "ansi":
            return self.world.render_text(self.world.get_state())
        if self.render_mode == "rgb_array":
            return self._image(self.world.render_text(self.world.get_state()).splitlines()[:-1])
        return None

    # Cell colours of the rgb_array rendering, by map character ("/" is an open door).
    _COLOURS = {"#": (90, 90, 90), ".": (245, 245, 245), "R": (40, 90, 220), "H": (240, 170, 30),
                "o": (130, 80, 40), "k": (230, 200, 0), "D": (150, 20, 20), "/": (240, 170, 170)}

    def _image(self, rows: list[str], cell: int = 16) -> np.ndarray:
        # Several humans are drawn as digits in the text rendering: all get the human colour.
        colours = np.array([[self._COLOURS.get(ch, self._COLOURS["H"]) for ch in row] for row in rows], dtype=np.uint8)
        return np.repeat(np.repeat(colours, cell, axis=0), cell, axis=1)
