"""Exact Phase 2 quantities by backward induction over the finite-horizon state DAG.

With the step count in the state, every transition goes from t to t+1, so processing the
reachable states from the horizon backwards computes, for every state s (Eqs. 4-9 of Heitzig &
Potham, arXiv 2508.00159, in the mean-over-goals and mean-over-humans forms):

    Q_r(s, a)   = gamma_r * E[V_r(s') | s, a]                      (humans from the goal-averaged prior)
    pi_r(s)     = power-law softmax of Q_r(s, .) with exponent beta_r
    V_h^e(s, g) = E_{a ~ pi_r, human h pursuing g}[ 1{g in s'} + (1 - 1{g in s'}) gamma_h V_h^e(s', g) ]
    X_h(s)      = sum_g w_g V_h^e(s, g)^zeta / sum_g w_g
    U_r(s)      = -(mean_h X_h(s)^(-xi))^eta
    V_r(s)      = U_r(s) + sum_a pi_r(s, a) Q_r(s, a)

and at terminal states V_h^e = 0 and V_r = ``terminal_v_r``. This is the ground truth the
learned networks are tested against.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import product

import numpy as np
import torch as th

from sb3_ext.envs.assist.goals import ReachGoal
from sb3_ext.envs.assist.human_prior import BoltzmannHumanPrior
from sb3_ext.envs.assist.world import N_ACTIONS, GridState
from sb3_ext.phase2.power import PowerParams, power_law_log_probs, robot_reward


@dataclass
class ExactSolution:
    """Per-state exact values. Goal pairs ``(h, goal)`` index the last axis of ``v_h_e``."""

    params: PowerParams
    goal_pairs: list[ReachGoal]
    states: list[GridState]  # every reachable state, initial state first
    v_h_e: dict[GridState, np.ndarray] = field(default_factory=dict)  # (n_pairs,)
    x_h: dict[GridState, np.ndarray] = field(default_factory=dict)  # (n_humans,), non-terminal only
    u_r: dict[GridState, float] = field(default_factory=dict)  # non-terminal only
    q_r: dict[GridState, np.ndarray] = field(default_factory=dict)  # (n_actions,), non-terminal only
    pi_r: dict[GridState, np.ndarray] = field(default_factory=dict)  # (n_actions,), non-terminal only
    v_r: dict[GridState, float] = field(default_factory=dict)


def reachable_states(prior: BoltzmannHumanPrior, start: GridState) -> list[GridState]:
    """Every state reachable from ``start`` with positive probability, in breadth-first order."""
    seen = {start}
    order = [start]
    i = 0
    while i < len(order):
        state = order[i]
        i += 1
        if prior.world.is_terminal(state):
            continue
        for robot_action in range(N_ACTIONS):
            for nxt in prior.successors(state, robot_action):
                if nxt not in seen:
                    seen.add(nxt)
                    order.append(nxt)
    return order


def solve(prior: BoltzmannHumanPrior, params: PowerParams, start: GridState | None = None) -> ExactSolution:
    """Backward induction from ``start`` (default: the world's initial state)."""
    world = prior.world
    start = world.initial_state() if start is None else start
    pairs = list(prior.goal_pairs)
    sol = ExactSolution(params, pairs, reachable_states(prior, start))

    for state in sorted(sol.states, key=lambda s: -s.t):
        if world.is_terminal(state):
            sol.v_h_e[state] = np.zeros(len(pairs))
            sol.v_r[state] = params.terminal_v_r
            continue
        q = np.array([
            params.gamma_r * sum(p * sol.v_r[s2] for s2, p in prior.successors(state, a).items())
            for a in range(N_ACTIONS)
        ])
        pi = th.exp(power_law_log_probs(th.as_tensor(q), params.beta_r)).numpy()
        v = np.zeros(len(pairs))
        for j, goal in enumerate(pairs):
            for a in range(N_ACTIONS):
                for s2, p in prior.successors(state, a, {goal.human: goal}).items():
                    reached = goal.is_achieved(s2)
                    v[j] += pi[a] * p * (1.0 if reached else params.gamma_h * sol.v_h_e[s2][j])
        x = np.bincount(prior.pair_human, weights=prior.pair_weights * v**params.zeta, minlength=world.n_humans)
        if (x <= 0.0).any():
            h = int(np.flatnonzero(x <= 0.0)[0])
            raise ValueError(
                f"goals: human {h} can reach none of its goals from state {state}; give every human "
                "a goal it can always reach (e.g. its own cell), otherwise X_h = 0 and U_r = -inf"
            )
        u = float(robot_reward(th.as_tensor(x), params.xi, params.eta))
        sol.q_r[state], sol.pi_r[state], sol.v_h_e[state], sol.x_h[state], sol.u_r[state] = q, pi, v, x, u
        sol.v_r[state] = u + float(pi @ q)
    return sol


def occupancy(prior: BoltzmannHumanPrior, sol: ExactSolution) -> dict[GridState, float]:
    """Probability of visiting each state when the robot follows the exact pi_r.

    Each human pursues one goal for the whole episode, drawn by weight at the start (as in
    ``AssistGrid-v0`` without goal resampling), so the result is a mixture over goal profiles.
    """
    world = prior.world
    start = sol.states[0]
    visits: dict[GridState, float] = {}
    for profile in product(*prior.goals):
        weight = float(np.prod([g.weight / sum(o.weight for o in prior.goals[g.human]) for g in profile]))
        fixed = {g.human: g for g in profile}
        layer = {start: 1.0}
        while layer:
            nxt: dict[GridState, float] = {}
            for state, p_state in layer.items():
                visits[state] = visits.get(state, 0.0) + weight * p_state
                if world.is_terminal(state):
                    continue
                for a, p_a in enumerate(sol.pi_r[state]):
                    for s2, p in prior.successors(state, a, fixed).items():
                        nxt[s2] = nxt.get(s2, 0.0) + p_state * p_a * p
            layer = nxt
    return visits
