"""What Phase 2 needs from an environment: a world model, the humans' goals and a human prior.

``Phase2``, its exact solver (:mod:`sb3_ext.phase2.exact`), its evaluation and
:class:`~sb3_ext.phase2.env.WorldModelEnv` use only these three abstract classes, so any
domain that implements them can be planned and learned in. ``AssistGrid-v0``
(:mod:`sb3_ext.envs.assist`) is one implementation; the tests hold a second, tiny one.

Conventions: agent 0 is the robot, agents 1..n_humans the humans; every agent has the same
``n_actions`` discrete moves; states are hashable and the state graph reachable from the
initial state is finite and acyclic (e.g. the step count is part of the state), which is what
makes exact backward induction possible.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Hashable, Mapping, Sequence
from functools import lru_cache
from itertools import product
from typing import Any, NamedTuple

import numpy as np

State = Hashable


class Goal(ABC):
    """A possible goal of one human: a predicate on states, with a weight in that human's goal mean.

    Subclasses are hashable (frozen dataclasses do it) and set ``human`` and ``weight``.
    """

    human: int
    weight: float

    @abstractmethod
    def is_achieved(self, state: Any) -> bool:
        """Whether the goal holds in ``state``."""


class WorldModel(ABC):
    """Exact, finite-horizon dynamics of a robot and ``n_humans`` humans, and the state encoding.

    Subclasses set ``n_humans``, ``n_actions`` (moves per agent) and ``obs_dim`` (length of
    :meth:`encode`'s vector).
    """

    n_humans: int
    n_actions: int
    obs_dim: int

    @abstractmethod
    def initial_state(self) -> Any:
        """The state every episode starts from."""

    @abstractmethod
    def is_terminal(self, state: Any) -> bool:
        """Whether the episode ends in ``state``."""

    @abstractmethod
    def transition_probabilities(self, state: Any, joint_action: Sequence[int]) -> list[tuple[float, Any]] | None:
        """``(probability, next state)`` pairs of ``joint_action`` (robot first); None at terminal states."""

    @abstractmethod
    def sample_step(self, state: Any, joint_action: Sequence[int], rng: np.random.Generator) -> Any:
        """One next state drawn from :meth:`transition_probabilities`."""

    def canonical_moves(self, state: Any) -> np.ndarray:
        """``(n_humans + 1, n_actions)`` table: for each agent and move, an equivalent move in ``state``.

        Joint moves that map to the same canonical joint move must have the same successors.
        The default is the identity; a world model that knows which moves are equivalent (e.g.
        walking into a wall and staying) returns a coarser table, and the successor
        computations then ask :meth:`transition_probabilities` once per canonical joint move.
        """
        return np.tile(np.arange(self.n_actions), (self.n_humans + 1, 1))

    @abstractmethod
    def encode(self, state: Any) -> np.ndarray:
        """The float32 observation of ``state`` (one-to-one: :meth:`decode` inverts it)."""

    @abstractmethod
    def decode(self, obs: np.ndarray) -> Any:
        """The state an observation encodes."""


class SuccessorArrays(NamedTuple):
    """A state's distinct successors and their probabilities under the human prior.

    ``p_robot[a, k]``: humans follow their goal-averaged prior; ``p_goal[a, j, k]``: the human of
    goal pair j pursues goal j, the other humans their goal-averaged prior.
    """

    states: list[Any]
    p_robot: np.ndarray  # (A, K)
    p_goal: np.ndarray  # (A, J, K)


class HumanPrior(ABC):
    """The humans' goal-conditioned policy prior over a :class:`WorldModel`.

    Subclasses implement :meth:`action_probs`; everything else (goal-averaged moves, joint moves,
    successor distributions) follows from it and is memoised per state.

    :param world: the world model
    :param goals: per human, the goals it may pursue (positive weights)
    """

    def __init__(self, world: WorldModel, goals: Sequence[Sequence[Goal]]):
        if len(goals) != world.n_humans:
            raise ValueError(f"goals: {len(goals)} goal lists for {world.n_humans} humans")
        for h, gs in enumerate(goals):
            if not gs:
                raise ValueError(f"goals[{h}]: empty, expected at least one goal for human {h}")
            if any(g.human != h for g in gs):
                raise ValueError(f"goals[{h}]: holds a goal of another human, expected goals with human == {h}")
        self.world = world
        self.goals = tuple(tuple(g) for g in goals)
        self._goal_weights = [np.array([g.weight for g in gs]) / sum(g.weight for g in gs) for gs in self.goals]
        # All (human, goal) pairs in one flat list, the layout of V_h^e's goal axis everywhere;
        # ``pair_weights`` are each goal's share in its human's mean over goals.
        self.goal_pairs: tuple[Goal, ...] = tuple(g for gs in self.goals for g in gs)
        self.pair_human = np.array([g.human for g in self.goal_pairs])
        self.pair_weights = np.concatenate(self._goal_weights)
        # Every joint move of the humans, in the order of the middle axis of the transition tensor.
        self.joint_moves = list(product(range(world.n_actions), repeat=world.n_humans))
        self._make_caches()

    def _make_joint_tables(self) -> None:
        """Index tables of every (robot move, humans' joint move), built once per prior rather than per state."""
        n_a, n_h = self.world.n_actions, self.world.n_humans
        self._moves = np.array(self.joint_moves, dtype=np.int64).reshape(len(self.joint_moves), n_h)
        self._joints = np.concatenate([np.repeat(np.arange(n_a), len(self._moves))[:, None],
                                       np.tile(self._moves, (n_a, 1))], axis=1)
        # A joint move as one integer whose order is the rows' lexicographic order (robot move first).
        self._joint_codes = n_a ** np.arange(n_h, -1, -1)
        ends = np.cumsum([len(g) for g in self.goals])
        self._pair_slices = [slice(end - len(g), end) for g, end in zip(self.goals, ends, strict=True)]

    @abstractmethod
    def action_probs(self, state: Any, goal: Goal) -> np.ndarray:
        """Move probabilities of human ``goal.human`` pursuing ``goal`` in ``state``."""

    # ------------------------------------------------------------------ derived, memoised
    def _make_caches(self) -> None:
        self._make_joint_tables()
        self._successors = lru_cache(maxsize=262144)(self._successors_uncached)
        self._arrays = lru_cache(maxsize=65536)(self._successor_arrays_uncached)

    def __getstate__(self) -> dict:
        # Memo tables are rebuilt on unpickling (subprocess envs, actor processes, saved models).
        state = dict(self.__dict__)
        for key in [k for k, v in state.items() if hasattr(v, "cache_info")]:
            del state[key]
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        if "joint_moves" not in state:  # pickled before the joint-move table existed
            self.joint_moves = list(product(range(self.world.n_actions), repeat=self.world.n_humans))
        self._make_caches()

    def marginal_action_probs(self, state: Any, human: int) -> np.ndarray:
        """The human's move distribution averaged over its goals (what the goal-agnostic robot expects)."""
        return self._goal_mean(human, np.array([self.action_probs(state, g) for g in self.goals[human]]))

    def _goal_mean(self, human: int, probs: np.ndarray) -> np.ndarray:
        """The mean of ``probs`` (one row per goal of ``human``) under the human's goal weights."""
        return np.einsum("g,ga->a", self._goal_weights[human], probs)

    def joint_human_actions(
        self, state: Any, fixed: Mapping[int, Goal] | None = None
    ) -> list[tuple[float, tuple[int, ...]]]:
        """(probability, humans' joint move) pairs; human h pursues ``fixed[h]`` when given, else its goal mean."""
        fixed = fixed or {}
        per_human = [
            self.action_probs(state, fixed[h]) if h in fixed else self.marginal_action_probs(state, h)
            for h in range(self.world.n_humans)
        ]
        out = []
        for actions in self.joint_moves:
            p = float(np.prod([per_human[h][a] for h, a in enumerate(actions)]))
            if p > 0.0:
                out.append((p, actions))
        return out

    def successors(self, state: Any, robot_action: int, fixed: Mapping[int, Goal] | None = None) -> dict[Any, float]:
        """Distribution of the next state after ``robot_action``, humans as in :meth:`joint_human_actions`."""
        return self._successors(state, robot_action, tuple(sorted((fixed or {}).items())))

    def _successors_uncached(self, state: Any, robot_action: int, fixed: tuple[tuple[int, Goal], ...]) -> dict[Any, float]:
        out: dict[Any, float] = {}
        for p_h, human_actions in self.joint_human_actions(state, dict(fixed)):
            for p, s_next in self.world.transition_probabilities(state, (robot_action, *human_actions)) or ():
                out[s_next] = out.get(s_next, 0.0) + p_h * p
        return out

    def successor_arrays(self, state: Any) -> SuccessorArrays:
        """Every successor distribution the solver and the learner need at ``state``, at once.

        The world model is asked once per joint move (robot x humans); the goal-averaged and
        the per-goal distributions are then contractions of that transition tensor with the
        humans' joint-move probabilities, instead of one world-model walk per goal.
        """
        return self._arrays(state)

    def _successor_arrays_uncached(self, state: Any) -> SuccessorArrays:
        world = self.world
        n_a, n_m = world.n_actions, len(self.joint_moves)
        # Every (robot move, humans' joint move), as canonical joint moves; one world-model call each.
        canonical = world.canonical_moves(state)[np.arange(world.n_humans + 1), self._joints]
        _, first, which = np.unique(canonical @ self._joint_codes, return_index=True, return_inverse=True)
        unique = canonical[first]
        index: dict[Any, int] = {}
        entries: list[tuple[int, int, float]] = []
        for u, joint in enumerate(unique.tolist()):
            for p, s_next in world.transition_probabilities(state, joint) or ():
                entries.append((u, index.setdefault(s_next, len(index)), p))
        by_key = np.zeros((len(unique), len(index)))
        for u, k, p in entries:
            by_key[u, k] += p
        transitions = by_key[which.reshape(-1)].reshape(n_a, n_m, len(index))
        per_goal = np.stack([self.action_probs(state, g) for g in self.goal_pairs])  # (J, A)
        marginal = np.stack([self._goal_mean(h, per_goal[rows]) for h, rows in enumerate(self._pair_slices)])  # (H, A)
        moves = self._moves
        # Joint-move probabilities: humans independent; the human of pair j swaps in its goal's moves.
        factors = marginal[np.arange(world.n_humans), moves]  # (M, H): each human's marginal move prob
        p_marginal = factors.prod(axis=1)
        others = [np.delete(factors, h, axis=1).prod(axis=1) for h in range(world.n_humans)]  # (M,) each
        p_pairs = np.stack([per_goal[j][moves[:, h]] * others[h] for j, h in enumerate(self.pair_human)])
        p_robot = np.einsum("m,amk->ak", p_marginal, transitions)
        # Successors only impossible moves lead to are dropped (goal weights are positive, so a
        # successor possible under some goal is possible under the goal mean).
        keep = np.flatnonzero(p_robot.max(axis=0) > 0.0)
        states = list(index)
        return SuccessorArrays(
            states=[states[k] for k in keep],
            p_robot=p_robot[:, keep],
            p_goal=np.einsum("jm,amk->ajk", p_pairs, transitions[:, :, keep]),
        )
