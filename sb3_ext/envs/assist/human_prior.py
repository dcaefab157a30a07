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
from collections.abc import Mapping, Sequence
from functools import lru_cache
from itertools import product

import numpy as np

from sb3_ext.envs.assist.goals import ReachGoal
from sb3_ext.envs.assist.maps import Cell
from sb3_ext.envs.assist.world import MOVES, N_ACTIONS, AssistWorld, GridState


class BoltzmannHumanPrior:
    """Boltzmann-over-shortest-path human policy with eps_h-uniform noise."""

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
        if len(goals) != world.n_humans:
            raise ValueError(f"goals: {len(goals)} goal lists for {world.n_humans} humans")
        self.world = world
        self.goals = tuple(tuple(g) for g in goals)
        self.beta_h = float(beta_h)
        self.epsilon_h = float(epsilon_h)
        self._goal_weights = [np.array([g.weight for g in gs]) / sum(g.weight for g in gs) for gs in self.goals]
        # All (human, goal) pairs in one flat list, the layout of V_h^e's goal axis everywhere;
        # ``pair_weights`` are each goal's share in its human's mean over goals.
        self.goal_pairs: tuple[ReachGoal, ...] = tuple(g for gs in self.goals for g in gs)
        self.pair_human = np.array([g.human for g in self.goal_pairs])
        self.pair_weights = np.concatenate(self._goal_weights)
        self._make_caches()

    def _make_caches(self) -> None:
        self._distances = lru_cache(maxsize=65536)(_distance_map)
        self._successors = lru_cache(maxsize=262144)(self._successors_uncached)

    def __getstate__(self) -> dict:
        # The memo tables are rebuilt on unpickling (subprocess envs, actor processes).
        state = dict(self.__dict__)
        del state["_distances"], state["_successors"]
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._make_caches()

    def action_probs(self, state: GridState, goal: ReachGoal) -> np.ndarray:
        """Move probabilities of human ``goal.human`` pursuing ``goal`` in ``state``."""
        obstacles = self.world.human_obstacles(state)
        dist = self._distances(goal.cells, obstacles)
        pos = state.agents[goal.human + 1]
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
        return (1.0 - self.epsilon_h) * boltzmann + self.epsilon_h / N_ACTIONS

    def marginal_action_probs(self, state: GridState, human: int) -> np.ndarray:
        """The human's move distribution averaged over its goals (what the goal-agnostic robot expects)."""
        probs = [self.action_probs(state, g) for g in self.goals[human]]
        return np.einsum("g,ga->a", self._goal_weights[human], np.array(probs))

    def joint_human_actions(
        self, state: GridState, fixed: Mapping[int, ReachGoal] | None = None
    ) -> list[tuple[float, tuple[int, ...]]]:
        """(probability, humans' joint move) pairs.

        Human h pursues ``fixed[h]`` when given; the others follow their goal-averaged prior.
        """
        fixed = fixed or {}
        per_human = [
            self.action_probs(state, fixed[h]) if h in fixed else self.marginal_action_probs(state, h)
            for h in range(self.world.n_humans)
        ]
        out = []
        for actions in product(range(N_ACTIONS), repeat=self.world.n_humans):
            p = float(np.prod([per_human[h][a] for h, a in enumerate(actions)]))
            if p > 0.0:
                out.append((p, actions))
        return out

    def successors(
        self, state: GridState, robot_action: int, fixed: Mapping[int, ReachGoal] | None = None
    ) -> dict[GridState, float]:
        """Distribution of the next state given the robot's move, the humans drawn from the prior.

        Memoized: the exact solver and the learner's model-based targets ask for the same
        (state, move, goal) triples many times.
        """
        key = tuple(sorted(fixed.items())) if fixed else ()
        return self._successors(state, robot_action, key)

    def _successors_uncached(
        self, state: GridState, robot_action: int, fixed: tuple[tuple[int, ReachGoal], ...]
    ) -> dict[GridState, float]:
        out: dict[GridState, float] = {}
        for p_h, human_actions in self.joint_human_actions(state, dict(fixed)):
            for p, s_next in self.world.transition_probabilities(state, (robot_action, *human_actions)) or ():
                out[s_next] = out.get(s_next, 0.0) + p_h * p
        return out


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
