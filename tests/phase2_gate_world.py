"""A second, tiny implementation of the Phase 2 world-model interface (no grid, no AssistGrid code).

A human walks a corridor of four cells 0..3; between cells 1 and 2 stands a gate that only the
robot can open (move 1) or close (move 2); move 0 waits. The human steps left or right (moves 1,
2) or stays (0), and a step slips (the human stays) with probability ``SLIP``. The state is
``(t, position, gate_open)``; the episode ends at ``HORIZON``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sb3_ext.phase2.world_model import Goal, HumanPrior, WorldModel

HORIZON = 4
SLIP = 0.2
N_CELLS = 4


class GateWorld(WorldModel):
    n_humans = 1
    n_actions = 3
    obs_dim = (HORIZON + 1) + N_CELLS + 1

    def initial_state(self):
        return (0, 0, False)

    def is_terminal(self, state) -> bool:
        return state[0] >= HORIZON

    def _moved(self, position: int, gate_open: bool, move: int) -> int:
        target = position + {0: 0, 1: -1, 2: 1}[move]
        if not 0 <= target < N_CELLS or (not gate_open and {position, target} == {1, 2}):
            return position
        return target

    def transition_probabilities(self, state, joint_action):
        if self.is_terminal(state):
            return None
        t, position, gate_open = state
        robot, human = joint_action
        gate_open = {0: gate_open, 1: True, 2: False}[robot]  # the gate moves before the human
        stepped = (t + 1, self._moved(position, gate_open, human), gate_open)
        stayed = (t + 1, position, gate_open)
        if stepped == stayed:
            return [(1.0, stayed)]
        return [(1.0 - SLIP, stepped), (SLIP, stayed)]

    def sample_step(self, state, joint_action, rng):
        outcomes = self.transition_probabilities(state, joint_action)
        return outcomes[int(rng.choice(len(outcomes), p=[p for p, _ in outcomes]))][1]

    def encode(self, state) -> np.ndarray:
        t, position, gate_open = state
        obs = np.zeros(self.obs_dim, dtype=np.float32)
        obs[t] = 1.0
        obs[HORIZON + 1 + position] = 1.0
        obs[-1] = float(gate_open)
        return obs

    def decode(self, obs: np.ndarray):
        return (int(np.argmax(obs[: HORIZON + 1])), int(np.argmax(obs[HORIZON + 1 : -1])), bool(obs[-1] > 0.5))


@dataclass(frozen=True)
class CellGoal(Goal):
    human: int
    cell: int
    weight: float = 1.0

    def is_achieved(self, state) -> bool:
        return state[1] == self.cell


class TowardPrior(HumanPrior):
    """The human moves toward its goal with probability 0.8 (stays there once in it), else uniformly."""

    def action_probs(self, state, goal):
        position = state[1]
        best = 0 if position == goal.cell else (2 if goal.cell > position else 1)
        probs = np.full(3, 0.1)
        probs[best] = 0.8
        return probs


def gate_prior() -> TowardPrior:
    return TowardPrior(GateWorld(), [[CellGoal(0, 0), CellGoal(0, 3)]])
