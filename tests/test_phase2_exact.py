"""The exact backward-induction solver against hand-computed values and direct enumeration."""

import math
from itertools import product

import numpy as np
import pytest

from sb3_ext.envs.assist import MAPS, AssistWorld, BoltzmannHumanPrior, GridMap, make_goals
from sb3_ext.envs.assist.world import N_ACTIONS, UP
from sb3_ext.phase2.exact import greedy_probs, occupancy, reach_probabilities, solve
from sb3_ext.phase2.power import PowerParams


def make_prior(text, max_steps, goals=None, beta_h=1.0, epsilon_h=0.1):
    world = AssistWorld(GridMap.parse(text), max_steps)
    return BoltzmannHumanPrior(world, make_goals(world.grid, goals), beta_h=beta_h, epsilon_h=epsilon_h)


@pytest.mark.parametrize("conventions, terminal, dw", [
    ("plain", -1.0, 1.0),
    # EMPO's reward weight (1 - gamma_r) / (-ln gamma_r) at gamma_r = 0.99, and its terminal value.
    ("empo", -1e-10, 0.01 / -math.log(0.99)),
])
def test_one_step_corridor_by_hand(conventions, terminal, dw):
    # #H.R#  horizon 1, goals: each of the three cells.
    prior = make_prior("#H.R#", 1, beta_h=1.0, epsilon_h=0.1)
    params = PowerParams(conventions=conventions)  # zeta 2, xi 1, eta 1.1, gamma 0.99
    assert params.terminal_v_r == terminal and params.reward_weight == pytest.approx(dw, rel=1e-15)
    sol = solve(prior, params)
    s0 = prior.world.initial_state()
    e = math.e
    # P(the human steps right) for each goal: 0.9 * Boltzmann + 0.1 / 5.
    p_right_home = 0.9 * (e**-1 / (4 + e**-1)) + 0.02  # goal (0,1): stay-like moves keep d = 0
    p_right_mid = 0.9 * (1 / (4 * e**-1 + 1)) + 0.02  # goal (0,2): right gives d = 0, others d = 1
    # The last step's Q_r is gamma_r * terminal V_r for every move, so pi_r is uniform; the
    # robot's left move contests (0,2) and wins half the time: the human's step succeeds w.p. 0.9.
    np.testing.assert_allclose(sol.q_r[s0], np.full(5, 0.99 * terminal), rtol=1e-12)
    np.testing.assert_allclose(sol.pi_r[s0], np.full(5, 0.2), rtol=1e-12)
    v = np.array([1 - 0.9 * p_right_home, 0.9 * p_right_mid, 0.0])
    np.testing.assert_allclose(sol.v_h_e[s0], v, rtol=1e-12)
    x = (v[0] ** 2 + v[1] ** 2) / 3
    np.testing.assert_allclose(sol.x_h[s0], [x])
    u = -((1 / x) ** 1.1)
    assert sol.u_r[s0] == pytest.approx(u)
    assert sol.v_r[s0] == pytest.approx(dw * u + 0.99 * terminal, rel=1e-12)
    ends = [s for s in sol.states if s.t == 1]
    assert ends and all(sol.v_r[s] == terminal and not sol.v_h_e[s].any() for s in ends)


def test_one_step_three_by_three_room_by_hand():
    prior = make_prior(MAPS["room3"]["text"], 1, beta_h=1.5, epsilon_h=0.0)
    sol = solve(prior, PowerParams(zeta=3.0, xi=0.5, eta=2.0))
    s0 = prior.world.initial_state()
    b = math.exp(-1.5)
    # Human in the top-left corner; the robot in the opposite corner cannot interfere.
    stay_home = 3 / (3 + 2 * b)  # goal (1,1): stay, up, left keep d = 0; down, right give d = 1
    step_over = 1 / (1 + 3 * b + b**2)  # goal (1,2) (and (2,1)): one move gives d = 0
    expected = {(1, 1): stay_home, (1, 2): step_over, (2, 1): step_over}
    v = [expected.get(next(iter(g.cells)), 0.0) for g in sol.goal_pairs]
    np.testing.assert_allclose(sol.v_h_e[s0], v, rtol=1e-12)
    x = (stay_home**3 + 2 * step_over**3) / 9
    assert sol.x_h[s0][0] == pytest.approx(x)
    assert sol.u_r[s0] == pytest.approx(-(x**-0.5) ** 2.0)


def _enumerated_successors(prior, state, robot_action, fixed_goal=None):
    """Successor distribution built from action_probs and transition_probabilities directly."""
    world = prior.world
    per_human = [
        prior.action_probs(state, fixed_goal) if fixed_goal is not None and h == fixed_goal.human
        else sum(w * prior.action_probs(state, g) for w, g in
                 zip(prior.pair_weights[prior.pair_human == h], prior.goals[h], strict=False))
        for h in range(world.n_humans)
    ]
    out = {}
    for actions in product(range(N_ACTIONS), repeat=world.n_humans):
        p_h = np.prod([per_human[h][a] for h, a in enumerate(actions)])
        for p, s2 in world.transition_probabilities(state, (robot_action, *actions)):
            out[s2] = out.get(s2, 0.0) + p_h * p
    return out


# Two humans facing each other over one free cell, with weighted goals (one a region): the
# weighted mean over goals and the mean over humans of Eqs. 7-8.
TWO_HUMANS = ("#H.H#\n##R##", [[(0, 1), {"cells": [(0, 2), (0, 3)], "weight": 2.0}],
                                [{"cells": (0, 3), "weight": 0.5}, (0, 2)]])


@pytest.mark.parametrize(
    "text, goals, horizon",
    [(MAPS["line"]["text"], None, 3), (MAPS["rock"]["text"], None, 4), (MAPS["key_door"]["text"], None, 4),
     (*TWO_HUMANS, 3)],
    ids=["line", "rock", "key_door", "two_humans"],
)
@pytest.mark.parametrize("conventions", ["empo", "plain"])
def test_solution_satisfies_equations_4_to_9(text, goals, horizon, conventions):
    prior = make_prior(text, horizon, goals=goals, beta_h=2.0, epsilon_h=0.1)
    params = PowerParams(beta_r=7.0, gamma_h=0.9, gamma_r=0.95, zeta=2.0, xi=1.5, eta=1.2, terminal_v_r=-0.5,
                         conventions=conventions)
    dw = (1 - 0.95) / -math.log(0.95) if conventions == "empo" else 1.0
    sol = solve(prior, params)
    for s in sol.states:
        if prior.world.is_terminal(s):
            continue
        q = [params.gamma_r * sum(p * sol.v_r[s2] for s2, p in _enumerated_successors(prior, s, a).items())
             for a in range(N_ACTIONS)]
        np.testing.assert_allclose(sol.q_r[s], q, rtol=1e-10)
        power = (-np.array(q)) ** -params.beta_r
        np.testing.assert_allclose(sol.pi_r[s], power / power.sum(), rtol=1e-10)
        for j, g in enumerate(sol.goal_pairs):
            v = sum(
                sol.pi_r[s][a] * p * (1.0 if g.is_achieved(s2) else params.gamma_h * sol.v_h_e[s2][j])
                for a in range(N_ACTIONS) for s2, p in _enumerated_successors(prior, s, a, g).items()
            )
            assert sol.v_h_e[s][j] == pytest.approx(v, rel=1e-10, abs=1e-14)
        x = np.zeros(prior.world.n_humans)  # each human's weighted mean over its goals
        for j, g in enumerate(sol.goal_pairs):
            x[g.human] += g.weight / sum(o.weight for o in prior.goals[g.human]) * sol.v_h_e[s][j] ** params.zeta
        np.testing.assert_allclose(sol.x_h[s], x, rtol=1e-10)
        u = -(np.mean(x**-params.xi) ** params.eta)
        assert sol.u_r[s] == pytest.approx(u, rel=1e-10)
        assert sol.v_r[s] == pytest.approx(dw * u + sol.pi_r[s] @ sol.q_r[s], rel=1e-10)


def test_beta_r_zero_is_the_uniform_robot():
    prior = make_prior(MAPS["rock"]["text"], 3)
    sol = solve(prior, PowerParams(beta_r=0.0))
    assert all(np.allclose(p, 0.2) for p in sol.pi_r.values())


def test_values_of_a_given_robot_policy():
    """solve(..., robot_probs=uniform) at beta_r 10 gives the beta_r = 0 solution (the uniform robot's
    values), and a robot that only ever stays gives what a world without the robot's moves gives."""
    prior = make_prior(MAPS["rock"]["text"], 4)
    uniform = solve(prior, PowerParams(beta_r=0.0))
    given = solve(prior, PowerParams(beta_r=10.0), robot_probs={s: np.full(N_ACTIONS, 0.2) for s in uniform.pi_r})
    for s in uniform.pi_r:
        np.testing.assert_allclose(given.v_h_e[s], uniform.v_h_e[s], rtol=1e-12)
        np.testing.assert_allclose(given.q_r[s], uniform.q_r[s], rtol=1e-12)
        assert given.v_r[s] == pytest.approx(uniform.v_r[s], rel=1e-12)
    stay = solve(prior, PowerParams(), robot_probs={s: np.eye(N_ACTIONS)[0] for s in uniform.pi_r})
    s0 = prior.world.initial_state()
    # The rock stays in place, so the human (shut in) can reach fewer cells than with a robot that moves.
    assert stay.x_h[s0][0] < uniform.x_h[s0][0]
    assert all(stay.pi_r[s][0] == 1.0 for s in stay.pi_r)


def test_robot_pushes_the_rock_first_in_the_rock_world():
    prior = make_prior(MAPS["rock"]["text"], 6, beta_h=10.0, epsilon_h=0.1)
    sol = solve(prior, PowerParams())
    s0 = prior.world.initial_state()
    assert int(np.argmax(sol.q_r[s0])) == UP
    occ = occupancy(prior, sol)
    for t in range(7):  # each time layer of the occupancy measure is a distribution
        assert sum(p for s, p in occ.items() if s.t == t) == pytest.approx(1.0)


def test_unreachable_goals_are_a_clear_error():
    prior = make_prior("#H.R#", 1, goals=[[(0, 3)]])
    with pytest.raises(ValueError, match="human 0 can reach none of its goals"):
        solve(prior, PowerParams())


@pytest.mark.parametrize(
    "field, value, message",
    [("beta_r", -1.0, "beta_r"), ("gamma_h", 0.0, "gamma_h"), ("zeta", 0.5, "zeta"),
     ("terminal_v_r", 0.0, "terminal_v_r"), ("xi", float("nan"), "xi"), ("eta", "1", "eta")],
)
def test_power_params_are_validated(field, value, message):
    with pytest.raises(ValueError, match=message):
        PowerParams(**{field: value})


# The large named maps: their exact solutions, checked against direct enumeration on a sample of
# states, and the detour each one exists for, measured as the exact greedy robot's effect on the
# chance that a human reaches a goal beyond the obstacle (uniform robot as the baseline).
LARGE_MAPS = {
    # map: (goal pair index by (human, cell)), exact greedy at least, uniform robot at most
    "key_door_big": ((0, (1, 5)), 0.9, 0.01),  # the cell beyond the door
    "rocks": ((0, (2, 3)), 0.9, 0.3),  # the cell of the first rock
    "two_humans": ((0, (2, 5)), 0.6, 0.2),  # human 0's goal: the other human's half
}


@pytest.mark.parametrize("name", sorted(LARGE_MAPS))
def test_large_maps_are_solved_exactly_and_need_their_detour(name):
    (human, cell), greedy_at_least, uniform_at_most = LARGE_MAPS[name]
    spec = MAPS[name]
    prior = make_prior(spec["text"], spec["max_steps"], goals=spec["goals"], beta_h=10.0, epsilon_h=0.1)
    grid = prior.world.grid
    assert grid.width >= 7 and grid.height >= 6 and spec["max_steps"] >= 16
    params = PowerParams()
    sol = solve(prior, params)
    assert len(sol.states) > 1000 and sol.states[0] == prior.world.initial_state()
    dw = (1 - params.gamma_r) / -math.log(params.gamma_r)
    rng = np.random.default_rng(0)
    inner = [s for s in sol.states if not prior.world.is_terminal(s)]
    for i in rng.choice(len(inner), size=10, replace=False):
        s = inner[i]
        q = [params.gamma_r * sum(p * sol.v_r[s2] for s2, p in _enumerated_successors(prior, s, a).items())
             for a in range(N_ACTIONS)]
        np.testing.assert_allclose(sol.q_r[s], q, rtol=1e-10)
        for j, g in enumerate(sol.goal_pairs):
            v = sum(sol.pi_r[s][a] * p * (1.0 if g.is_achieved(s2) else params.gamma_h * sol.v_h_e[s2][j])
                    for a in range(N_ACTIONS) for s2, p in _enumerated_successors(prior, s, a, g).items())
            assert sol.v_h_e[s][j] == pytest.approx(v, rel=1e-10, abs=1e-14)
        assert sol.v_r[s] == pytest.approx(dw * sol.u_r[s] + sol.pi_r[s] @ sol.q_r[s], rel=1e-12)
    j = next(j for j, g in enumerate(sol.goal_pairs) if g.human == human and cell in g.cells)
    greedy = reach_probabilities(prior, sol, {s: greedy_probs(q) for s, q in sol.q_r.items()})
    uniform = reach_probabilities(prior, sol, {s: np.full(N_ACTIONS, 0.2) for s in sol.pi_r})
    assert greedy[j] >= greedy_at_least and uniform[j] <= uniform_at_most, (greedy[j], uniform[j])
