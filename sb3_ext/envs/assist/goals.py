"""Possible human goals: reach a cell or a region of cells."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sb3_ext.envs.assist.maps import Cell, GridMap
from sb3_ext.envs.assist.world import GridState
from sb3_ext.phase2.world_model import Goal


@dataclass(frozen=True)
class ReachGoal(Goal):
    """Human ``human`` stands on one of ``cells``; ``weight`` is its share in the goal mean."""

    human: int
    cells: frozenset[Cell]
    weight: float = 1.0

    def is_achieved(self, state: GridState) -> bool:
        """Whether the goal holds in ``state`` (agent 0 is the robot, so human h is agent h+1)."""
        return state.agents[self.human + 1] in self.cells


def make_goals(grid: GridMap, spec: Sequence[Sequence] | None) -> tuple[tuple[ReachGoal, ...], ...]:
    """Build each human's goal list from a spec; ``None`` means "every floor cell, equal weight".

    A spec has one entry per human; each entry is a list of goals, a goal being a cell
    ``(row, col)``, a region ``[(row, col), ...]``, or ``{"cells": region-or-cell, "weight": w}``.
    """
    n_humans = len(grid.humans)
    if spec is None:
        return tuple(tuple(ReachGoal(h, frozenset([cell])) for cell in grid.floor) for h in range(n_humans))
    if len(spec) != n_humans:
        raise ValueError(f"goals: {len(spec)} goal lists for {n_humans} humans, expected one list per human")
    floor = set(grid.floor)
    out = []
    for h, goals in enumerate(spec):
        if len(goals) == 0:
            raise ValueError(f"goals[{h}]: empty, expected at least one goal for human {h}")
        parsed = []
        for i, goal in enumerate(goals):
            weight = 1.0
            if isinstance(goal, dict):
                unknown = set(goal) - {"cells", "weight"}
                if unknown or "cells" not in goal:
                    raise ValueError(f"goals[{h}][{i}]: expected keys 'cells' and optional 'weight', got {sorted(goal)}")
                weight = float(goal.get("weight", 1.0))
                goal = goal["cells"]
            cells = _as_cells(goal)
            where = f"goals[{h}][{i}]"
            if not cells:
                raise ValueError(f"{where}: no cells, expected a cell (row, col) or a list of cells")
            off = sorted(c for c in cells if c not in floor)
            if off:
                raise ValueError(f"{where}: cell {off[0]} is a wall or outside the map, expected floor cells")
            if not weight > 0.0:
                raise ValueError(f"{where}: weight {weight} must be > 0")
            parsed.append(ReachGoal(h, frozenset(cells), weight))
        out.append(tuple(parsed))
    return tuple(out)


def _as_cells(goal: Iterable) -> list[Cell]:
    """A single ``(row, col)`` or an iterable of them, as a list of integer tuples."""
    items = list(goal)
    if len(items) == 2 and all(isinstance(v, int) for v in items):
        return [(int(items[0]), int(items[1]))]
    return [(int(r), int(c)) for r, c in items]
