"""Cached world-model successors for Phase 2's model-based (Expected-SARSA style) targets.

For a state s the learner needs, for every robot move a, the distribution of s' when the
humans follow their goal-averaged prior (for Q_r) and, for every (human, goal) pair j, when
human j pursues goal j (for V_h^e), plus which goals hold in each s'. Computing these calls
``transition_probabilities`` for every joint move (:meth:`HumanPrior.successor_arrays`), so each
state's table is built once, the first time the state is sampled, and kept, keyed by its
observation (the encoding is one-to-one).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch as th

from sb3_ext.phase2.world_model import HumanPrior


@dataclass(frozen=True)
class SuccessorTable:
    """The successors of one state: K distinct next states and their probabilities."""

    obs: np.ndarray  # (K, obs_dim) encoded successors
    terminal: np.ndarray  # (K,) 1.0 where the successor ends the episode
    p_robot: np.ndarray  # (A, K) humans from the goal-averaged prior
    p_goal: np.ndarray  # (A, J, K) the human of pair j pursues goal j
    achieved: np.ndarray  # (J, K) goal j holds in the successor


class SuccessorBatch(NamedTuple):
    """Tables of a batch of states, zero-padded to the largest K (padding has probability 0).

    Successors are given by their value id (see :meth:`SuccessorCache.value_observations`).
    """

    own: th.Tensor  # (B,) value id of each state itself
    successors: th.Tensor  # (B, K) value id of each successor (0 in the padding)
    terminal: th.Tensor  # (B, K)
    p_robot: th.Tensor  # (B, A, K)
    p_goal: th.Tensor  # (B, A, J, K)
    achieved: th.Tensor  # (B, J, K)


class SuccessorCache:
    """Numbers the states it is shown and builds each one's :class:`SuccessorTable` once.

    Besides the state ids (states with a table), every state that is a sampled state or a
    successor gets a *value id*: the networks' values a target needs are computed once per
    distinct state (``value_observations``), not once per (state, successor) pair, and many
    states share successors.
    """

    def __init__(self, prior: HumanPrior):
        self.prior = prior
        self.world = prior.world
        self._ids: dict[bytes, int] = {}
        self._tables: list[SuccessorTable] = []
        self._obs: list[np.ndarray] = []
        self._obs_table = th.zeros(0)  # the rows of _obs stacked, extended when read
        # Per state id: its non-terminal successors' state ids (padded rows) and how many (-1: not yet known).
        self._successors = np.zeros((0, 1), dtype=np.int64)
        self._n_successors = np.zeros(0, dtype=np.int64)
        self._value_ids: dict[bytes, int] = {}
        self._value_obs: list[np.ndarray] = []
        self._own_value_ids: list[int] = []
        self._successor_value_ids: list[np.ndarray] = []

    def __len__(self) -> int:
        return len(self._tables)

    def ids(self, obs: np.ndarray) -> np.ndarray:
        """The id of each observation's state (rows of ``obs``), building tables for new ones."""
        out = np.empty(len(obs), dtype=np.int64)
        for i, row in enumerate(np.asarray(obs, dtype=np.float32)):
            key = row.tobytes()
            state_id = self._ids.get(key)
            if state_id is None:
                state_id = self._add(key, row, self.build_table(row))
            out[i] = state_id
        return out

    def table(self, obs: np.ndarray) -> SuccessorTable:
        """The successor table of the (non-terminal) state ``obs`` encodes, built once and kept."""
        return self._tables[int(self.ids(np.asarray(obs)[None])[0])]

    def insert(self, obs: np.ndarray, table: SuccessorTable) -> None:
        """Add a table built elsewhere (by an actor process), unless the state is known."""
        row = np.asarray(obs, dtype=np.float32)
        key = row.tobytes()
        if key not in self._ids:
            self._add(key, row, table)

    def _add(self, key: bytes, row: np.ndarray, table: SuccessorTable) -> int:
        state_id = self._ids[key] = len(self._tables)
        self._tables.append(table)
        self._obs.append(row)
        self._own_value_ids.append(self._value_id(key, row))
        self._successor_value_ids.append(np.array([self._value_id(o.tobytes(), o) for o in table.obs], dtype=np.int64))
        return state_id

    def _value_id(self, key: bytes, row: np.ndarray) -> int:
        value_id = self._value_ids.get(key)
        if value_id is None:
            value_id = self._value_ids[key] = len(self._value_obs)
            self._value_obs.append(row)
        return value_id

    def n_values(self) -> int:
        """How many distinct states (sampled or successors) have a value id."""
        return len(self._value_obs)

    def value_observations(self, start: int, device: th.device | str = "cpu") -> th.Tensor:
        """Observations of value ids ``start`` onwards."""
        return th.as_tensor(np.stack(self._value_obs[start:]), device=device)

    def sample_successors(self, ids: np.ndarray) -> np.ndarray:
        """One non-terminal successor of each state, uniform over its distinct successors.

        States whose successors are all terminal contribute nothing (the result can be shorter).
        """
        grow = len(self._tables) - len(self._n_successors)  # states added since the last call
        if grow:
            self._n_successors = np.concatenate([self._n_successors, np.full(grow, -1, dtype=np.int64)])
            self._successors = np.concatenate([self._successors, np.zeros((grow, self._successors.shape[1]), np.int64)])
        unknown = ids[self._n_successors[ids] < 0]
        for state_id in dict.fromkeys(unknown.tolist()):  # first-seen order, each once
            table = self._tables[state_id]
            self._set_successors(state_id, self.ids(table.obs[table.terminal == 0.0]))
        counts = self._n_successors[ids]
        ids, counts = ids[counts > 0], counts[counts > 0]
        picks = (np.random.random(len(ids)) * counts).astype(np.int64)
        return self._successors[ids, picks]

    def _set_successors(self, state_id: int, successors: np.ndarray) -> None:
        if len(successors) > self._successors.shape[1]:
            pad = len(successors) - self._successors.shape[1]
            self._successors = np.pad(self._successors, ((0, 0), (0, pad)))
        self._successors[state_id, : len(successors)] = successors
        self._n_successors[state_id] = len(successors)

    def sample_known(self, n: int) -> np.ndarray:
        """Ids of ``n`` states drawn uniformly over every state with a table (with replacement)."""
        return np.random.randint(0, len(self._tables), size=n)

    def observations(self, ids: np.ndarray, device: th.device | str = "cpu") -> th.Tensor:
        """Observations of state ids ``ids``."""
        if len(self._obs_table) < len(self._obs):
            new = th.as_tensor(np.stack(self._obs[len(self._obs_table):]))
            self._obs_table = new if not len(self._obs_table) else th.cat([self._obs_table, new])
        return self._obs_table[th.as_tensor(ids)].to(device)

    def build_table(self, obs: np.ndarray) -> SuccessorTable:
        """The successor table of the state ``obs`` encodes (not stored)."""
        state = self.world.decode(obs)
        if self.world.is_terminal(state):
            raise ValueError(f"model-based targets: state {state} is terminal and has no successors")
        arrays = self.prior.successor_arrays(state)
        return SuccessorTable(
            obs=np.stack([self.world.encode(s) for s in arrays.states]).astype(np.float32),
            terminal=np.array([self.world.is_terminal(s) for s in arrays.states], dtype=np.float32),
            p_robot=arrays.p_robot.astype(np.float32),
            p_goal=arrays.p_goal.astype(np.float32),
            achieved=np.array([[g.is_achieved(s) for s in arrays.states] for g in self.prior.goal_pairs],
                              dtype=np.float32),
        )

    def batch(self, ids: np.ndarray, device: th.device | str = "cpu") -> SuccessorBatch:
        """The tables of states ``ids``, zero-padded to a common K."""
        tables = [self._tables[i] for i in ids]
        k_max = max(len(t.terminal) for t in tables)
        n, n_pairs, n_actions = len(tables), len(self.prior.goal_pairs), self.world.n_actions
        successors = np.zeros((n, k_max), dtype=np.int64)
        terminal = np.zeros((n, k_max), dtype=np.float32)
        p_robot = np.zeros((n, n_actions, k_max), dtype=np.float32)
        p_goal = np.zeros((n, n_actions, n_pairs, k_max), dtype=np.float32)
        achieved = np.zeros((n, n_pairs, k_max), dtype=np.float32)
        for b, (i, t) in enumerate(zip(ids, tables, strict=True)):
            k = len(t.terminal)
            successors[b, :k], terminal[b, :k], p_robot[b, :, :k] = self._successor_value_ids[i], t.terminal, t.p_robot
            p_goal[b, :, :, :k], achieved[b, :, :k] = t.p_goal, t.achieved
        own = np.array([self._own_value_ids[i] for i in ids], dtype=np.int64)
        arrays = (own, successors, terminal, p_robot, p_goal, achieved)
        return SuccessorBatch(*(th.as_tensor(x, device=device) for x in arrays))
