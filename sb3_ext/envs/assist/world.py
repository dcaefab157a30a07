"""The assistance gridworld as an explicit world model.

One robot (agent 0) and one or more humans (agents 1..) move on a grid with walls, rocks that
only the robot can push, and optionally a key and locked doors. Every agent picks one of five
moves per step; the agents then move one after another in a uniformly random order, which is
the only source of randomness (two agents heading for the same cell: the first one gets it).
The step count is part of the state, so the state graph is a finite DAG that ends at
``max_steps``: that is what makes exact backward induction possible.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import permutations
from math import factorial
from typing import NamedTuple

import numpy as np

from sb3_ext.envs.assist.maps import Cell, GridMap
from sb3_ext.phase2.world_model import WorldModel

STAY, UP, DOWN, LEFT, RIGHT = range(5)
N_ACTIONS = 5
ACTION_NAMES = ("stay", "up", "down", "left", "right")
MOVES: tuple[Cell, ...] = ((0, 0), (-1, 0), (1, 0), (0, -1), (0, 1))


class GridState(NamedTuple):
    """Hashable world state. ``agents[0]`` is the robot; ``key`` is None once the robot holds it."""

    t: int
    agents: tuple[Cell, ...]
    rocks: tuple[Cell, ...]
    key: Cell | None
    open_doors: tuple[Cell, ...]

    def __deepcopy__(self, memo: dict) -> GridState:
        # Immutable all the way down (ints, tuples, None), so a deep copy is the state itself.
        # SB3's DummyVecEnv deep-copies every step's info dict, which holds the state; walking its
        # nested tuples cost ~5% of Phase 2's training time on the rocks map.
        return self


def _shift(cell: Cell, action: int) -> Cell:
    dr, dc = MOVES[action]
    return (cell[0] + dr, cell[1] + dc)


class AssistWorld(WorldModel):
    """The gridworld as a :class:`~sb3_ext.phase2.world_model.WorldModel`; also ``get_state``/``set_state``."""

    n_actions = N_ACTIONS

    def __init__(self, grid: GridMap, max_steps: int):
        if not isinstance(max_steps, int) or max_steps < 1:
            raise ValueError(f"max_steps: {max_steps!r} must be an integer >= 1")
        self.grid = grid
        self.max_steps = max_steps
        self.n_agents = 1 + len(grid.humans)
        self.n_humans = len(grid.humans)
        self._state = self.initial_state()
        # Observation layout: one-hot planes over floor cells, then the step count one-hot.
        self._floor = grid.floor
        self._index = {cell: i for i, cell in enumerate(self._floor)}
        self._planes = ["robot", *[f"human{h}" for h in range(self.n_humans)]]
        if grid.rocks:
            self._planes.append("rocks")
        if grid.key is not None:
            self._planes.append("key")
        if grid.doors:
            self._planes.append("closed_doors")
        self.obs_dim = len(self._planes) * len(self._floor) + (max_steps + 1)

    # ----------------------------------------------------------------- state access
    def initial_state(self) -> GridState:
        g = self.grid
        return GridState(0, (g.robot, *g.humans), tuple(sorted(g.rocks)), g.key, ())

    def get_state(self) -> GridState:
        return self._state

    def set_state(self, state: GridState) -> None:
        self._state = state

    def is_terminal(self, state: GridState) -> bool:
        return state.t >= self.max_steps

    # ----------------------------------------------------------------- dynamics
    def transition_probabilities(
        self, state: GridState, joint_action: Sequence[int]
    ) -> list[tuple[float, GridState]] | None:
        """Exact successor distribution of ``joint_action`` (robot first), None at a terminal state.

        Agents that stay cannot interfere, so only the orders of the moving agents are
        enumerated; each of the k! orders has probability 1/k!.
        """
        if self.is_terminal(state):
            return None
        movers = [i for i, a in enumerate(joint_action) if a != STAY]
        if len(movers) <= 1:
            return [(1.0, self._apply(state, joint_action, movers))]
        weight = 1.0 / factorial(len(movers))
        outcomes: dict[GridState, float] = {}
        for order in permutations(movers):
            successor = self._apply(state, joint_action, order)
            outcomes[successor] = outcomes.get(successor, 0.0) + weight
        return [(p, s) for s, p in outcomes.items()]

    def canonical_moves(self, state: GridState) -> np.ndarray:
        """Each agent's moves, with every move that cannot succeed in ``state`` replaced by STAY.

        A move into a wall never succeeds, and neither does a human's move into a rock or a
        closed door (the robot pushing that rock or opening that door in the same step ends up
        standing in the cell). Such a mover acts exactly like an agent that stays, and fewer
        movers also mean fewer orders to enumerate.
        """
        table = np.tile(np.arange(N_ACTIONS), (self.n_agents, 1))
        for i, (r, c) in enumerate(state.agents):
            for action in range(1, N_ACTIONS):
                dr, dc = MOVES[action]
                target = (r + dr, c + dc)
                if target in self.grid.walls or (i > 0 and (target in state.rocks or self._closed_door(state, target))):
                    table[i, action] = STAY
        return table

    def _closed_door(self, state: GridState, cell: Cell) -> bool:
        return cell in self.grid.doors and cell not in state.open_doors

    def sample_step(self, state: GridState, joint_action: Sequence[int], rng: np.random.Generator) -> GridState:
        """Draw one successor by drawing the agents' order, as the real world would."""
        if self.is_terminal(state):
            raise ValueError(f"sample_step: state at t={state.t} is terminal (max_steps={self.max_steps})")
        order = [i for i in rng.permutation(self.n_agents) if joint_action[i] != STAY]
        return self._apply(state, joint_action, order)

    def _apply(self, state: GridState, joint_action: Sequence[int], order: Sequence[int]) -> GridState:
        agents = list(state.agents)
        rocks = set(state.rocks)
        key = state.key
        open_doors = set(state.open_doors)
        walls, doors = self.grid.walls, self.grid.doors
        for i in order:
            action = joint_action[i]
            dr, dc = MOVES[action]
            target = (agents[i][0] + dr, agents[i][1] + dc)
            if target in walls or target in agents:
                continue
            if target in doors and target not in open_doors:
                # Only the robot carrying the key gets through, and the door stays open.
                if i != 0 or key is not None or self.grid.key is None:
                    continue
                open_doors.add(target)
            if target in rocks:
                if i != 0:
                    continue  # humans cannot push rocks
                beyond = _shift(target, action)
                blocked = (
                    beyond in walls
                    or beyond in rocks
                    or beyond in agents
                    or beyond == key
                    or (beyond in doors and beyond not in open_doors)
                )
                if blocked:
                    continue
                rocks.remove(target)
                rocks.add(beyond)
            if i == 0 and target == key:
                key = None  # the robot picks the key up
            agents[i] = target
        return GridState(
            state.t + 1,
            tuple(agents),
            state.rocks if len(rocks & set(state.rocks)) == len(rocks) else tuple(sorted(rocks)),
            key,
            state.open_doors if len(open_doors) == len(state.open_doors) else tuple(sorted(open_doors)),
        )

    # ----------------------------------------------------------------- queries used by the human prior
    def human_obstacles(self, rocks: tuple[Cell, ...], open_doors: tuple[Cell, ...]) -> frozenset[Cell]:
        """Cells a human can never enter in a state with these rocks and open doors (other agents
        move, so they are not obstacles)."""
        closed = (d for d in self.grid.doors if d not in open_doors)
        return frozenset(self.grid.walls | set(rocks) | set(closed))

    # ----------------------------------------------------------------- observations
    def encode(self, state: GridState) -> np.ndarray:
        """Flat float32 vector: one-hot planes over floor cells, then one-hot step count."""
        n_floor = len(self._floor)
        obs = np.zeros(self.obs_dim, dtype=np.float32)
        for plane, cells in enumerate(self._plane_cells(state)):
            for cell in cells:
                obs[plane * n_floor + self._index[cell]] = 1.0
        obs[len(self._planes) * n_floor + min(state.t, self.max_steps)] = 1.0
        return obs

    def decode(self, obs: np.ndarray) -> GridState:
        """Inverse of :meth:`encode` (the encoding is one-to-one)."""
        n_floor = len(self._floor)
        planes = np.asarray(obs[: len(self._planes) * n_floor]).reshape(len(self._planes), n_floor)
        cells = {name: [self._floor[i] for i in np.flatnonzero(planes[p] > 0.5)] for p, name in enumerate(self._planes)}
        agents = tuple(cells[name][0] for name in self._planes[: self.n_agents])
        t = int(np.argmax(obs[len(self._planes) * n_floor :]))
        key_cells = cells.get("key", [])
        closed = set(cells.get("closed_doors", []))
        return GridState(
            t,
            agents,
            tuple(sorted(cells.get("rocks", []))),
            key_cells[0] if key_cells else None,
            tuple(sorted(d for d in self.grid.doors if d not in closed)),
        )

    def _plane_cells(self, state: GridState) -> list[list[Cell]]:
        planes: list[list[Cell]] = [[cell] for cell in state.agents]
        if self.grid.rocks:
            planes.append(list(state.rocks))
        if self.grid.key is not None:
            planes.append([state.key] if state.key is not None else [])
        if self.grid.doors:
            planes.append([d for d in self.grid.doors if d not in state.open_doors])
        return planes

    def render_text(self, state: GridState) -> str:
        """The state drawn in the map alphabet (humans as digits when there are several)."""
        g = self.grid
        rows = [["#" if (r, c) in g.walls else "." for c in range(g.width)] for r in range(g.height)]
        for d in g.doors:
            rows[d[0]][d[1]] = "/" if d in state.open_doors else "D"
        if state.key is not None:
            rows[state.key[0]][state.key[1]] = "k"
        for r, c in state.rocks:
            rows[r][c] = "o"
        for h, (r, c) in enumerate(state.agents[1:]):
            rows[r][c] = "H" if self.n_humans == 1 else str(h)
        rows[state.agents[0][0]][state.agents[0][1]] = "R"
        return "\n".join("".join(row) for row in rows) + f"\nt={state.t}/{self.max_steps}"
