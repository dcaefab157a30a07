"""The fixed goal-conditioned human policy prior and the successor distributions it induces.

A human pursuing goal g picks move a with probability

    (1 - eps_h) * softmax_a(-beta_h * d(cell(a), g)) + eps_h / 5,

where ``cell(a)`` is where the move would take the human if it were alone (walls, rocks and
closed doors block it) and ``d`` is the shortest-path distance to the goal region around those
obstacles. Other agents are not obstacles: they move. When no move gets closer to reaching the
goal at all (the goal is cut off), the Boltzmann part is uniform.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from functools import lru_cache

import numpy as np

from sb3_ext.envs.assist.goals import ReachGoal
from sb3_ext.envs.assist.maps import Cell
from sb3_ext.envs.assist.world import MOVES, N_ACTIONS, AssistWorld, GridState
from sb3_ext.phase2.world_model import Goal, HumanPrior


class BoltzmannHumanPrior(HumanPrior):
    """Boltzmann-over-shortest-path human policy with eps_h-uniform noise.

    :param world: the gridworld
    :param goals: per human, its :class:`ReachGoal` list
    :param beta_h: inverse temperature over the distance to the goal
    :param epsilon_h: share of uniform noise
    """

    world: AssistWorld

    def __init__(
        self,
        world: AssistWorld,
        goals: Sequence[Sequence[ReachGoal]],
        beta_h: float = 10.0,
        epsilon_h: float = 0.1,
    ):
        if not beta_h >= 0.0:
            raise ValueError(f"beta_h: {beta_h} must be >= 0")
        if not 0.0 <= epsilon_h <= 1.0:
            raise ValueError(f"epsilon_h: {epsilon_h} must be in [0, 1]")
        self.beta_h = float(beta_h)
        self.epsilon_h = float(epsilon_h)
        super().__init__(world, goals)

    def _make_caches(self) -> None:
        super()._make_caches()
        self._distances = lru_cache(maxsize=65536)(_distance_map)
        self._action_probs = lru_cache(maxsize=262144)(self._action_probs_uncached)

    def action_probs(self, state: GridState, goal: Goal) -> np.ndarray:
        """Move probabilities of human ``goal.human`` pursuing ``goal`` in ``state`` (read-only array)."""
        # Memoised on what they depend on, not on the whole state: the robot's cell and the step
        # count do not matter, so one entry serves every state that differs only in those.
        return self._action_probs(goal, state.agents[goal.human + 1], state.rocks, state.open_doors)

    def _action_probs_uncached(
        self, goal: Goal, pos: Cell, rocks: tuple[Cell, ...], open_doors: tuple[Cell, ...]
    ) -> np.ndarray:
        # Checked here, on a cache miss, rather than on every call of the hot path above.
        if not isinstance(goal, ReachGoal):
            raise TypeError(f"BoltzmannHumanPrior: goal {goal!r} is not a ReachGoal, the only goal it has distances for")
        obstacles = self.world.human_obstacles(rocks, open_doors)
        dist = self._distances(goal.cells, obstacles)
        d = np.empty(N_ACTIONS)
        for a, (dr, dc) in enumerate(MOVES):
            cell = (pos[0] + dr, pos[1] + dc)
            d[a] = dist.get(pos if cell in obstacles else cell, np.inf)
        if np.isinf(d).all():
            boltzmann = np.full(N_ACTIONS, 1.0 / N_ACTIONS)
        else:
            logits = -self.beta_h * (d - d.min())  # shift by the minimum: exp never overflows
            boltzmann = np.exp(logits)
            boltzmann /= boltzmann.sum()
        probs = (1.0 - self.epsilon_h) * boltzmann + self.epsilon_h / N_ACTIONS
        probs.flags.writeable = False  # memoised: shared by every caller
        return probs


def _distance_map(goal_cells: frozenset[Cell], obstacles: frozenset[Cell]) -> dict[Cell, int]:
    """Breadth-first distances from the goal region to every cell reachable around ``obstacles``."""
    dist = {c: 0 for c in goal_cells if c not in obstacles}
    queue = deque(dist)
    while queue:
        r, c = cell = queue.popleft()
        for dr, dc in MOVES[1:]:
            nxt = (r + dr, c + dc)
            if nxt not in dist and nxt not in obstacles:
                dist[nxt] = dist[cell] + 1
                queue.append(nxt)
    return dist
