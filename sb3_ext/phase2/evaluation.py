"""Checks of a trained ``Phase2`` model against the exact solution that measure the task.

:func:`evaluate` compares the learned V_h^e, X_h and Q_r with the exact ones on the states the
exact *soft* robot (pi_r) visits AND on those the exact *greedy* robot visits, and computes each
human goal's reach probability under five robots: the learned greedy and soft robots, the exact
greedy and soft ones, and a uniform one. Reach probabilities are computed exactly by pushing
probability mass through the world model (the expected value of a roll-out, without its noise);
:func:`goal_reach_rate` samples roll-outs, to cross-check.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch as th

from sb3_ext.phase2.exact import (
    ExactSolution,
    greedy_probs,
    greedy_reach_bounds,
    occupancy,
    reach_probabilities,
    solve,
)
from sb3_ext.phase2.world_model import Goal, HumanPrior

ROBOTS = ("learned_greedy", "learned_soft", "exact_greedy", "exact_soft", "uniform")


@dataclass(frozen=True)
class Agreement:
    """Worst relative errors of the learned values over a set of states, and greedy-action agreement.

    Relative error is ``|learned - exact| / max(|exact|, floor)``: the floor (``prob_floor``
    for V_h^e and X_h, which live in [0, 1]) keeps goals that are out of reach (exact value 0)
    from dividing by zero; Q_r is never 0, so it has no floor.
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


def range_gap(values: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> float:
    """Largest distance from ``values`` to the ranges [lo, hi], entry by entry (0 inside them)."""
    return float(np.max(np.maximum(0.0, np.maximum(lo - values, values - hi))))


@dataclass(frozen=True)
class Evaluation:
    """Errors on the states each exact robot visits, and every goal's reach probability under five robots.

    ``own`` compares the networks with the exact values of the policy they learned (the learned
    soft robot, followed exactly): a small ``own`` error beside a large ``soft`` one means the
    networks fit their own policy and the error lies in that policy (Q_r's differences between
    moves, or states it never visits), not in fitting V_h^e or X_h.

    ``reach[name][j]`` is the chance that the human of goal pair j, pursuing goal j, reaches it
    before the episode ends, with the robot ``name`` (one of ``ROBOTS``; ``exact_greedy`` breaks
    ties uniformly). Exact greedy robots may break ties between equally good moves in any way:
    ``greedy_reach_lo`` and ``greedy_reach_hi`` bound the reach probability of every one of
    them (only moves whose exact Q_r are equal up to rounding count as tied).
    """

    soft: Agreement  # on the states the exact soft robot visits
    greedy: Agreement  # on the states the exact greedy robot visits
    own: Agreement  # on the soft robot's states, against the exact values of the LEARNED soft robot
    reach: dict[str, np.ndarray]
    greedy_reach_lo: np.ndarray
    greedy_reach_hi: np.ndarray
    goal_pairs: tuple[Goal, ...]

    @property
    def reach_gap(self) -> float:
        """Largest distance, over every human goal, from the learned greedy robot's reach
        probability to the range the exact greedy robots span (0 when inside it)."""
        return range_gap(self.reach["learned_greedy"], self.greedy_reach_lo, self.greedy_reach_hi)

    def within(self, tolerance: float = 0.05, reach_tolerance: float = 0.05) -> bool:
        """Values within ``tolerance`` and greedy = exact on both state sets, reach within ``reach_tolerance``."""
        return self.soft.within(tolerance) and self.greedy.within(tolerance) and self.reach_gap <= reach_tolerance

    def summary(self) -> str:
        """A few lines for logs and benchmark output."""
        lines = []
        for name, a in (("soft", self.soft), ("greedy", self.greedy)):
            lines.append(f"states the exact {name} robot visits ({a.n_states}): V_h^e err {a.v_h_e:.4f}, "
                         f"X_h err {a.x_h:.4f}, Q_r err {a.q_r:.4f}, greedy = exact {a.greedy_agreement:.2f}")
        lines.append(f"same states as the soft robot's, against the exact values of the learned soft robot: "
                     f"V_h^e err {self.own.v_h_e:.4f}, X_h err {self.own.x_h:.4f}, Q_r err {self.own.q_r:.4f}")
        lines.append("mean reach probability over goals: " + ", ".join(
            f"{name} {self.reach[name].mean():.3f}" for name in ROBOTS)
            + f" (exact greedy robots {self.greedy_reach_lo.mean():.3f}-{self.greedy_reach_hi.mean():.3f}); "
            f"worst gap of the learned greedy robot to that range {self.reach_gap:.3f}")
        return "\n".join(lines)


def visited_states(occupancy: dict[Any, float], world_is_terminal: Callable[[Any], bool],
                   min_prob: float = 0.01) -> list[Any]:
    """Non-terminal states visited with probability at least ``min_prob``."""
    return [s for s, p in occupancy.items() if p >= min_prob and not world_is_terminal(s)]


def learned_values(model, states: list[Any], names: tuple[str, ...] = ("v_h_e", "x_h", "q_r")) -> dict[str, np.ndarray]:
    """The named quantities of the model's main networks at ``states`` (dropout off)."""
    world = model.prior.world
    obs = th.as_tensor(np.stack([world.encode(s) for s in states]), device=model.device)
    model.policy.set_training_mode(False)
    with th.no_grad():
        return {name: model.policy.value(name, obs).cpu().numpy().astype(float) for name in names}


def agreement(model, sol: ExactSolution, states: list[Any], prob_floor: float = 0.1,
              tie_tol: float = 0.01) -> Agreement:
    """Compare the model with the exact solution on ``states`` (non-terminal)."""
    if not states:
        raise ValueError("states: empty, expected at least one non-terminal state to compare on")
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


def robot_policies(model, sol: ExactSolution) -> dict[str, dict[Any, np.ndarray]]:
    """Each robot of ``ROBOTS`` as its move distribution at every non-terminal state of ``sol``."""
    states = list(sol.pi_r)
    q_learned = learned_values(model, states, ("q_r",))["q_r"]
    with th.no_grad():
        soft_learned = th.exp(model.policy.log_probs(th.as_tensor(q_learned))).numpy()
    greedy_learned = np.eye(q_learned.shape[1])[q_learned.argmax(axis=1)]  # predict(deterministic=True)
    n_actions = q_learned.shape[1]
    return {
        "learned_greedy": dict(zip(states, greedy_learned, strict=False)),
        "learned_soft": dict(zip(states, soft_learned, strict=False)),
        "exact_greedy": {s: greedy_probs(q) for s, q in sol.q_r.items()},
        "exact_soft": sol.pi_r,
        "uniform": {s: np.full(n_actions, 1.0 / n_actions) for s in states},
    }


def evaluate(model, sol: ExactSolution, min_prob: float = 0.01, prob_floor: float = 0.1,
             tie_tol: float = 0.01, reach_tie_tol: float = 1e-9) -> Evaluation:
    """The full check of ``model`` against ``sol`` (see the module docstring).

    ``tie_tol`` is the agreement's tolerance for a learned greedy move to count as exact;
    ``reach_tie_tol`` the (much smaller) one for moves exact greedy robots may swap when
    bounding reach probabilities: only moves whose Q_r is equal up to rounding, so that a
    near-tie with different consequences cannot widen the range the learned robot must meet.
    """
    prior: HumanPrior = model.prior
    policies = robot_policies(model, sol)
    terminal = prior.world.is_terminal
    soft_states = visited_states(occupancy(prior, sol), terminal, min_prob)
    greedy_states = visited_states(occupancy(prior, sol, policies["exact_greedy"]), terminal, min_prob)
    lo, hi = greedy_reach_bounds(prior, sol, reach_tie_tol)
    own = solve(prior, sol.params, sol.states[0], robot_probs=policies["learned_soft"])
    return Evaluation(
        soft=agreement(model, sol, soft_states, prob_floor, tie_tol),
        greedy=agreement(model, sol, greedy_states, prob_floor, tie_tol),
        own=agreement(model, own, soft_states, prob_floor, tie_tol),
        reach={name: reach_probabilities(prior, sol, probs) for name, probs in policies.items()},
        greedy_reach_lo=lo,
        greedy_reach_hi=hi,
        goal_pairs=tuple(sol.goal_pairs),
    )


def goal_reach_rate(
    prior: HumanPrior,
    robot: Callable[[Any], int],
    goal: Goal,
    n_episodes: int,
    seed: int = 0,
) -> float:
    """Share of sampled episodes in which ``goal``'s human, pursuing it, reaches it before the horizon."""
    world = prior.world
    rng = np.random.default_rng(seed)
    reached = 0
    for _ in range(n_episodes):
        state = world.initial_state()
        hit = goal.is_achieved(state)
        while not hit and not world.is_terminal(state):
            humans = [
                int(rng.choice(world.n_actions, p=prior.action_probs(state, goal) if h == goal.human
                               else prior.marginal_action_probs(state, h)))
                for h in range(world.n_humans)
            ]
            state = world.sample_step(state, (robot(state), *humans), rng)
            hit = goal.is_achieved(state)
        reached += hit
    return reached / n_episodes


def model_robot(model, deterministic: bool = True) -> Callable[[Any], int]:
    """The trained robot as a state -> move function: greedy, or sampled from pi_r (no epsilon)."""
    world = model.prior.world

    def act(state: Any) -> int:
        action, _ = model.policy.predict(world.encode(state), deterministic=deterministic)
        return int(action)

    return act


def exact_robot(sol: ExactSolution) -> Callable[[Any], int]:
    """The exact solution's greedy robot (first of the tied best moves)."""
    return lambda state: int(np.argmax(sol.q_r[state]))


def uniform_robot(n_actions: int, seed: int = 0) -> Callable[[Any], int]:
    """A robot moving uniformly at random."""
    rng = np.random.default_rng(seed)
    return lambda state: int(rng.integers(n_actions))
