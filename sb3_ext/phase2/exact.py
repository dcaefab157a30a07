"""Exact Phase 2 quantities by backward induction over the finite, acyclic state graph.

Processing the reachable states in reverse topological order computes, for every state s
(Eqs. 4-9 of Heitzig & Potham, arXiv 2508.00159, in the mean-over-goals and mean-over-humans
forms, with the reward weight dw of :class:`~sb3_ext.phase2.power.PowerParams`'s conventions):

    Q_r(s, a)   = gamma_r * E[V_r(s') | s, a]                      (humans from the goal-averaged prior)
    pi_r(s)     = power-law softmax of Q_r(s, .) with exponent beta_r
    V_h^e(s, g) = E_{a ~ pi_r, human h pursuing g}[ 1{g in s'} + (1 - 1{g in s'}) gamma_h V_h^e(s', g) ]
    X_h(s)      = sum_g w_g V_h^e(s, g)^zeta / sum_g w_g
    U_r(s)      = -(mean_h X_h(s)^(-xi))^eta
    V_r(s)      = dw * U_r(s) + sum_a pi_r(s, a) Q_r(s, a)

and at terminal states V_h^e = 0 and V_r = ``terminal_v_r``. This is the ground truth the
learned networks are tested against. Only the :mod:`~sb3_ext.phase2.world_model` interface is used.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch as th

from sb3_ext.phase2.power import PowerParams, power_law_log_probs, robot_reward
from sb3_ext.phase2.world_model import Goal, HumanPrior, SuccessorArrays


@dataclass
class ExactSolution:
    """Per-state exact values. Goal pairs ``(h, goal)`` index the last axis of ``v_h_e``.

    ``states`` is in topological order (every state before its successors), initial state first.
    """

    params: PowerParams
    goal_pairs: list[Goal]
    states: list[Any]
    v_h_e: dict[Any, np.ndarray] = field(default_factory=dict)  # (n_pairs,)
    x_h: dict[Any, np.ndarray] = field(default_factory=dict)  # (n_humans,), non-terminal only
    u_r: dict[Any, float] = field(default_factory=dict)  # non-terminal only
    q_r: dict[Any, np.ndarray] = field(default_factory=dict)  # (n_actions,), non-terminal only
    pi_r: dict[Any, np.ndarray] = field(default_factory=dict)  # (n_actions,), non-terminal only
    v_r: dict[Any, float] = field(default_factory=dict)


def reachable_states(prior: HumanPrior, start: Any) -> list[Any]:
    """Every state reachable from ``start`` with positive probability, in topological order.

    A depth-first search whose reversed post-order is topological; a state met again while it
    is still on the search path closes a cycle, which backward induction cannot handle.
    """
    world = prior.world
    order: list[Any] = []
    done: set[Any] = set()
    on_path: set[Any] = {start}
    stack: list[tuple[Any, list[Any]]] = [(start, _children(prior, start))]
    while stack:
        state, children = stack[-1]
        if children:
            child = children.pop()
            if child in on_path:
                raise ValueError(f"world model: state {child!r} can be reached from itself; the exact solver "
                                 "needs a finite horizon (e.g. the step count in the state)")
            if child not in done:
                on_path.add(child)
                stack.append((child, [] if world.is_terminal(child) else _children(prior, child)))
            continue
        stack.pop()
        on_path.discard(state)
        done.add(state)
        order.append(state)
    order.reverse()
    return order


def _children(prior: HumanPrior, state: Any) -> list[Any]:
    return [] if prior.world.is_terminal(state) else list(prior.successor_arrays(state).states)


def solve(prior: HumanPrior, params: PowerParams, start: Any | None = None,
          robot_probs: dict[Any, np.ndarray] | None = None) -> ExactSolution:
    """Backward induction from ``start`` (default: the world's initial state).

    With ``robot_probs`` (a move distribution per non-terminal state) the robot follows that
    policy instead of pi_r: the result holds the exact values *of that robot* (``pi_r`` is then
    that policy), e.g. of a learned one, to tell a network's fitting error from the error of
    the policy it learned.
    """
    world = prior.world
    start = world.initial_state() if start is None else start
    pairs = list(prior.goal_pairs)
    sol = ExactSolution(params, pairs, reachable_states(prior, start))
    achieved = {s: np.array([g.is_achieved(s) for g in pairs]) for s in sol.states}
    dw = params.reward_weight
    for state in reversed(sol.states):
        if world.is_terminal(state):
            sol.v_h_e[state] = np.zeros(len(pairs))
            sol.v_r[state] = params.terminal_value
            continue
        arrays: SuccessorArrays = prior.successor_arrays(state)
        q = params.gamma_r * (arrays.p_robot @ np.array([sol.v_r[s] for s in arrays.states]))
        if robot_probs is None:
            pi = th.exp(power_law_log_probs(th.as_tensor(q), params.beta_r)).numpy()
        else:
            pi = np.asarray(robot_probs[state], dtype=float)
        reached = np.stack([achieved[s] for s in arrays.states], axis=1)  # (J, K)
        v_next = np.stack([sol.v_h_e[s] for s in arrays.states], axis=1)  # (J, K)
        cont = np.where(reached, 1.0, params.gamma_h * v_next)
        v = np.einsum("a,ajk,jk->j", pi, arrays.p_goal, cont)
        x = np.bincount(prior.pair_human, weights=prior.pair_weights * v**params.zeta, minlength=world.n_humans)
        if (x <= 0.0).any():
            h = int(np.flatnonzero(x <= 0.0)[0])
            raise ValueError(
                f"goals: human {h} can reach none of its goals from state {state}; give every human "
                "a goal it can always reach (e.g. its own cell), otherwise X_h = 0 and U_r = -inf"
            )
        u = float(robot_reward(th.as_tensor(x), params.xi, params.eta))
        sol.q_r[state], sol.pi_r[state], sol.v_h_e[state], sol.x_h[state], sol.u_r[state] = q, pi, v, x, u
        sol.v_r[state] = dw * u + float(pi @ q)
    return sol


def greedy_probs(q_r: np.ndarray, rtol: float = 1e-9) -> np.ndarray:
    """The greedy robot's move distribution: uniform over the moves whose Q_r ties the best."""
    best = q_r >= q_r.max(axis=-1, keepdims=True) - rtol * np.abs(q_r).max(axis=-1, keepdims=True)
    return best / best.sum(axis=-1, keepdims=True)


def forward_masses(prior: HumanPrior, sol: ExactSolution, robot_probs: dict[Any, np.ndarray],
                   absorb: bool) -> dict[Any, np.ndarray]:
    """Probability of entering each state, per goal pair j, when the human of pair j pursues goal j
    for the whole episode (the other humans their goal mean) and the robot moves by ``robot_probs``.

    With ``absorb`` the walk of pair j stops where goal j holds: the masses at those states are
    then the first-arrival probabilities, whose sum is the chance the goal is ever reached.
    """
    pairs = sol.goal_pairs
    mass = {s: np.zeros(len(pairs)) for s in sol.states}
    mass[sol.states[0]][:] = 1.0
    for state in sol.states:  # topological: every state's mass is complete when it is reached
        m = mass[state]
        if absorb:
            m = np.where([g.is_achieved(state) for g in pairs], 0.0, m)
        if prior.world.is_terminal(state) or not m.any():
            continue
        arrays = prior.successor_arrays(state)
        flow = np.einsum("a,ajk->jk", robot_probs[state], arrays.p_goal) * m[:, None]
        for k, s_next in enumerate(arrays.states):
            mass[s_next] += flow[:, k]
    return mass


def occupancy(prior: HumanPrior, sol: ExactSolution, robot_probs: dict[Any, np.ndarray] | None = None) -> dict[Any, float]:
    """Probability of visiting each state when the robot moves by ``robot_probs`` (default: the exact pi_r).

    Each human pursues one goal for the whole episode, drawn by weight at the start (as in
    ``AssistGrid-v0`` without goal resampling). With one human this is exactly the episode's
    state distribution; with several it is the mean over humans h of the distribution where h
    pursues a drawn goal and the others move by their goal mean (each human's goal profile in turn).
    """
    mass = forward_masses(prior, sol, sol.pi_r if robot_probs is None else robot_probs, absorb=False)
    weights = prior.pair_weights / prior.world.n_humans
    return {s: float(m @ weights) for s, m in mass.items()}


def reach_probabilities(prior: HumanPrior, sol: ExactSolution, robot_probs: dict[Any, np.ndarray]) -> np.ndarray:
    """Per goal pair j, the chance that its human, pursuing goal j, reaches it before the episode ends."""
    mass = forward_masses(prior, sol, robot_probs, absorb=True)
    reached = np.zeros(len(sol.goal_pairs))
    for state, m in mass.items():
        reached += np.where([g.is_achieved(state) for g in sol.goal_pairs], m, 0.0)
    return reached


def greedy_reach_bounds(prior: HumanPrior, sol: ExactSolution, tie_tol: float) -> tuple[np.ndarray, np.ndarray]:
    """Per goal pair, the least and the greatest reach probability of any greedy robot.

    A greedy robot may take any move whose exact Q_r is within ``tie_tol`` (relative) of the
    best; where moves tie, the power metric does not prefer one, yet the choice can change
    whether a human gets through (e.g. on the last step, where every move has the same Q_r).
    Backward induction with a min (max) over those moves, per goal, gives the bounds.
    """
    pairs = sol.goal_pairs
    lo: dict[Any, np.ndarray] = {}
    hi: dict[Any, np.ndarray] = {}
    for state in reversed(sol.states):
        done = np.array([g.is_achieved(state) for g in pairs], dtype=float)
        if prior.world.is_terminal(state):
            lo[state] = hi[state] = done
            continue
        q = sol.q_r[state]
        moves = np.flatnonzero(q >= q.max() - tie_tol * np.abs(q).max())
        arrays = prior.successor_arrays(state)
        next_lo = np.stack([lo[s] for s in arrays.states], axis=1)  # (J, K)
        next_hi = np.stack([hi[s] for s in arrays.states], axis=1)
        by_move_lo = np.einsum("ajk,jk->aj", arrays.p_goal[moves], next_lo)
        by_move_hi = np.einsum("ajk,jk->aj", arrays.p_goal[moves], next_hi)
        lo[state] = np.where(done > 0, 1.0, by_move_lo.min(axis=0))
        hi[state] = np.where(done > 0, 1.0, by_move_hi.max(axis=0))
    start = sol.states[0]
    return lo[start], hi[start]
