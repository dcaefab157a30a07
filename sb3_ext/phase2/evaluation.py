"""Checks of a trained ``Phase2`` model against the exact solution, and behaviour roll-outs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch as th

from sb3_ext.envs.assist.goals import ReachGoal
from sb3_ext.envs.assist.human_prior import BoltzmannHumanPrior
from sb3_ext.envs.assist.world import N_ACTIONS, GridState
from sb3_ext.phase2.exact import ExactSolution


@dataclass(frozen=True)
class Agreement:
    """Worst relative errors of the learned values over a set of states, and greedy-action agreement.

    Relative error is ``|learned - exact| / max(|exact|, floor)``: the floor (``prob_floor``
    for V_h^e and X_h, which live in [0, 1]) keeps goals that are out of reach (exact value 0)
    from dividing by zero; Q_r is never near 0 (it is <= terminal_v_r < 0), so it has no floor.
    A learned greedy move counts as exact when its exact Q_r is within ``tie_tol`` (relative)
    of the exact best: moves with the same effect tie exactly, and a few states have two
    different moves within a fraction of a percent, which no 5%-accurate Q_r can order.
    """

    n_states: int
    v_h_e: float
    x_h: float
    q_r: float
    greedy_agreement: float  # share of states whose learned greedy move is an exact best move

    def within(self, tolerance: float) -> bool:
        return max(self.v_h_e, self.x_h, self.q_r) <= tolerance and self.greedy_agreement == 1.0


def visited_states(occupancy: dict[GridState, float], world_is_terminal: Callable[[GridState], bool],
                   min_prob: float = 0.01) -> list[GridState]:
    """Non-terminal states the exact policy visits with probability at least ``min_prob``."""
    return [s for s, p in occupancy.items() if p >= min_prob and not world_is_terminal(s)]


def learned_values(model, states: list[GridState]) -> dict[str, np.ndarray]:
    """V_h^e, X_h and Q_r of the model's main networks at ``states`` (dropout off)."""
    world = model.prior.world
    obs = th.as_tensor(np.stack([world.encode(s) for s in states]), device=model.device)
    model.policy.set_training_mode(False)
    with th.no_grad():
        return {name: model.policy.value(name, obs).cpu().numpy().astype(float) for name in ("v_h_e", "x_h", "q_r")}


def agreement(model, sol: ExactSolution, states: list[GridState], prob_floor: float = 0.1,
              tie_tol: float = 0.01) -> Agreement:
    """Compare the model with the exact solution on ``states`` (non-terminal)."""
    learned = learned_values(model, states)
    exact = {
        "v_h_e": np.stack([sol.v_h_e[s] for s in states]),
        "x_h": np.stack([sol.x_h[s] for s in states]),
        "q_r": np.stack([sol.q_r[s] for s in states]),
    }
    floors = {"v_h_e": prob_floor, "x_h": prob_floor, "q_r": 0.0}
    errors = {
        k: float(np.max(np.abs(learned[k] - exact[k]) / np.maximum(np.abs(exact[k]), floors[k]))) for k in exact
    }
    q = exact["q_r"]
    best = q >= q.max(axis=1, keepdims=True) - tie_tol * np.abs(q).max(axis=1, keepdims=True)
    chosen = learned["q_r"].argmax(axis=1)
    greedy = float(np.mean(best[np.arange(len(states)), chosen]))
    return Agreement(len(states), errors["v_h_e"], errors["x_h"], errors["q_r"], greedy)


def goal_reach_rate(
    prior: BoltzmannHumanPrior,
    robot: Callable[[GridState], int],
    goal: ReachGoal,
    n_episodes: int,
    seed: int = 0,
) -> float:
    """Share of episodes in which ``goal``'s human, pursuing it, reaches it before the horizon."""
    world = prior.world
    rng = np.random.default_rng(seed)
    reached = 0
    for _ in range(n_episodes):
        state = world.initial_state()
        hit = goal.is_achieved(state)
        while not hit and not world.is_terminal(state):
            humans = [
                int(rng.choice(N_ACTIONS, p=prior.action_probs(state, goal) if h == goal.human
                               else prior.marginal_action_probs(state, h)))
                for h in range(world.n_humans)
            ]
            state = world.sample_step(state, (robot(state), *humans), rng)
            hit = goal.is_achieved(state)
        reached += hit
    return reached / n_episodes


def model_robot(model, deterministic: bool = True) -> Callable[[GridState], int]:
    """The trained robot as a state -> move function: greedy, or sampled from pi_r (no epsilon)."""
    world = model.prior.world

    def act(state: GridState) -> int:
        action, _ = model.policy.predict(world.encode(state), deterministic=deterministic)
        return int(action)

    return act


def exact_robot(sol: ExactSolution) -> Callable[[GridState], int]:
    """The exact solution's greedy robot (first of the tied best moves)."""
    return lambda state: int(np.argmax(sol.q_r[state]))


def uniform_robot(seed: int = 0) -> Callable[[GridState], int]:
    rng = np.random.default_rng(seed)
    return lambda state: int(rng.integers(N_ACTIONS))
