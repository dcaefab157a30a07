"""``WorldModelEnv``: any Phase 2 world model as a gymnasium environment seen from the robot.

The agent is the robot; the humans act inside ``step`` from the goal-conditioned prior, each
pursuing a goal drawn (by weight) at reset and redrawn with probability ``goal_resample_prob``
per step. The robot never sees the goals. The reward counts humans reaching their current goal
for the first time in the episode; it is for monitoring only, Phase 2 learns from the world
model instead. The episode ends (``terminated``) when the world model says the state is terminal.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from sb3_ext.phase2.world_model import HumanPrior


class WorldModelEnv(gym.Env):
    """Gymnasium env over a :class:`~sb3_ext.phase2.world_model.HumanPrior` and its world model.

    ``prior`` (and ``world``) are the model ``Phase2`` plans with. ``info`` holds the state,
    each human's goal index and whether it has been reached.

    :param prior: the human prior (it carries the world model and the goals)
    :param goal_resample_prob: per-step probability that a human redraws its goal
    """

    def __init__(self, prior: HumanPrior, goal_resample_prob: float = 0.0):
        self.prior = prior
        self.world = prior.world
        self.goals = prior.goals
        self.goal_resample_prob = goal_resample_prob
        self.observation_space = spaces.Box(0.0, 1.0, shape=(self.world.obs_dim,), dtype=np.float32)
        self.action_space = spaces.Discrete(self.world.n_actions)
        self.state: Any = self.world.initial_state()
        self._goal_ids: list[int] = []
        self._reached: list[bool] = []
        self._weights = [np.array([g.weight for g in gs]) / sum(g.weight for g in gs) for gs in self.goals]

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
        return int(self.np_random.choice(len(self._weights[human]), p=self._weights[human]))

    def _info(self) -> dict[str, Any]:
        return {"state": self.state, "goals": tuple(self._goal_ids), "goals_reached": tuple(self._reached)}

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        self.state = self.world.initial_state()
        self._goal_ids = [self._draw_goal(h) for h in range(self.world.n_humans)]
        self._reached = [self.goals[h][g].is_achieved(self.state) for h, g in enumerate(self._goal_ids)]
        return self.world.encode(self.state), self._info()

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict]:
        if not self.action_space.contains(action):
            raise ValueError(f"action: {action!r}, expected an integer in [0, {self.world.n_actions - 1}]")
        state, rng = self.state, self.np_random
        for h in range(self.world.n_humans):
            if rng.random() < self._goal_resample_prob:
                new_goal = self._draw_goal(h)
                if new_goal != self._goal_ids[h]:
                    self._goal_ids[h] = new_goal
                    self._reached[h] = self.goals[h][new_goal].is_achieved(state)
        human_actions = []
        for h, g in enumerate(self._goal_ids):
            # Generator.choice(p=...)'s own inverse-CDF draw (the same numbers), without its per-call checks.
            cdf = np.cumsum(self.prior.action_probs(state, self.goals[h][g]))
            cdf /= cdf[-1]
            human_actions.append(int(cdf.searchsorted(rng.random(), side="right")))
        self.state = next_state = self.world.sample_step(state, (int(action), *human_actions), rng)
        reward = 0.0
        for h, g in enumerate(self._goal_ids):
            if not self._reached[h] and self.goals[h][g].is_achieved(next_state):
                self._reached[h] = True
                reward += 1.0
        terminated = self.world.is_terminal(next_state)
        return self.world.encode(next_state), reward, terminated, False, self._info()
