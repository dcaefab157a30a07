"""The assistance gridworld: map parsing, dynamics, random move order, human prior."""

import math
from collections import Counter

import numpy as np
import pytest

from sb3_ext.envs.assist import AssistWorld, BoltzmannHumanPrior, GridMap, GridState, ReachGoal, make_goals
from sb3_ext.envs.assist.world import LEFT, RIGHT, STAY, UP


def world(text: str, max_steps: int = 4) -> AssistWorld:
    return AssistWorld(GridMap.parse(text), max_steps)


def dist(outcomes) -> dict:
    return {s: p for p, s in outcomes}


def test_parse_finds_everything_and_walls_the_outside():
    g = GridMap.parse("#Hk#\nRoD.")
    assert g.humans == ((0, 1),) and g.robot == (1, 0) and g.rocks == ((1, 1),)
    assert g.key == (0, 2) and g.doors == ((1, 2),)
    assert (2, 0) in g.walls and (-1, 3) in g.walls and (1, 4) in g.walls  # the ring outside the text
    assert (1, 3) in g.floor and (0, 0) not in g.floor


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "empty"),
        ("#RH\n#.", "row 1 has 2 characters"),
        ("#RX#H", "unknown character 'X'"),
        ("#RR#H", "a second robot"),
        ("#H..#", "no robot"),
        ("#R..#", "no human"),
        ("#RHD#", "no key"),
    ],
)
def test_bad_maps_name_the_problem(text, message):
    with pytest.raises(ValueError, match=message):
        GridMap.parse(text)


def test_goal_specs():
    g = GridMap.parse("#RH.#")
    default = make_goals(g, None)
    assert [sorted(goal.cells) for goal in default[0]] == [[(0, 1)], [(0, 2)], [(0, 3)]]
    custom = make_goals(g, [[(0, 3), [(0, 1), (0, 2)], {"cells": (0, 2), "weight": 3}]])
    assert custom[0][1].cells == frozenset({(0, 1), (0, 2)}) and custom[0][2].weight == 3.0
    with pytest.raises(ValueError, match=r"goals\[0\]\[0\]: cell \(0, 0\) is a wall"):
        make_goals(g, [[(0, 0)]])
    with pytest.raises(ValueError, match="2 goal lists for 1 humans"):
        make_goals(g, [[(0, 3)], [(0, 2)]])
    with pytest.raises(ValueError, match=r"weight -1\.0 must be > 0"):
        make_goals(g, [[{"cells": (0, 3), "weight": -1}]])


def test_conflict_for_a_cell_is_decided_by_the_random_order():
    w = world("#R.H#")
    s = w.initial_state()
    out = dist(w.transition_probabilities(s, (RIGHT, LEFT)))
    assert out == {
        GridState(1, ((0, 2), (0, 3)), (), None, ()): 0.5,  # robot moved first
        GridState(1, ((0, 1), (0, 2)), (), None, ()): 0.5,  # human moved first
    }


def test_following_an_agent_works_only_if_it_moves_first():
    w = world("#RH.#")
    out = dist(w.transition_probabilities(w.initial_state(), (RIGHT, RIGHT)))
    assert out == {
        GridState(1, ((0, 2), (0, 3)), (), None, ()): 0.5,
        GridState(1, ((0, 1), (0, 3)), (), None, ()): 0.5,
    }
    # Swapping places is impossible in either order.
    out = dist(w.transition_probabilities(w.initial_state(), (RIGHT, LEFT)))
    assert out == {GridState(1, ((0, 1), (0, 2)), (), None, ()): 1.0}


def test_only_the_robot_pushes_rocks():
    w = world("#Ro.#\n#H###")
    s = w.initial_state()
    (p, pushed), = w.transition_probabilities(s, (RIGHT, STAY))
    assert p == 1.0 and pushed.agents[0] == (0, 2) and pushed.rocks == ((0, 3),)
    (_, again), = w.transition_probabilities(pushed, (RIGHT, STAY))
    assert again.agents[0] == (0, 2) and again.rocks == ((0, 3),)  # rock against the wall stays
    w2 = world("#Ho.#\n#R###")
    (_, blocked), = w2.transition_probabilities(w2.initial_state(), (STAY, RIGHT))
    assert blocked.agents[1] == (0, 1) and blocked.rocks == ((0, 2),)


def test_key_opens_the_door_for_everyone():
    w = world("#H.D.#\n###k##\n###R##", max_steps=10)
    s = w.initial_state()
    (_, s), = w.transition_probabilities(s, (UP, STAY))  # robot picks the key up
    assert s.key is None and s.agents[0] == (1, 3)
    (_, s), = w.transition_probabilities(s, (UP, STAY))  # opens the door and walks in
    assert s.open_doors == ((0, 3),) and s.agents[0] == (0, 3)
    (_, s), = w.transition_probabilities(s, (RIGHT, STAY))
    (_, s), = w.transition_probabilities(s, (STAY, RIGHT))
    (_, s), = w.transition_probabilities(s, (STAY, RIGHT))
    assert s.agents[1] == (0, 3)  # the human walks through the open door
    # Without the key the door is a wall, for the robot and the human alike.
    w2 = world("#HD.#\n##Rk#")
    (_, s2), = w2.transition_probabilities(w2.initial_state(), (UP, RIGHT))
    assert s2.agents == ((1, 2), (0, 1)) and s2.open_doors == ()


def test_terminal_state_has_no_transitions_and_state_round_trips():
    w = world("#RH.#", max_steps=2)
    s = GridState(2, ((0, 1), (0, 2)), (), None, ())
    assert w.is_terminal(s) and w.transition_probabilities(s, (STAY, STAY)) is None
    w.set_state(s)
    assert w.get_state() == s and hash(s) == hash(GridState(2, ((0, 1), (0, 2)), (), None, ()))
    for state in (w.initial_state(), s):
        assert w.decode(w.encode(state)) == state


def test_sampled_steps_follow_transition_probabilities():
    w = world("#R.H#")
    s = w.initial_state()
    rng = np.random.default_rng(0)
    counts = Counter(w.sample_step(s, (RIGHT, LEFT), rng) for _ in range(2000))
    for p, s_next in w.transition_probabilities(s, (RIGHT, LEFT)):
        assert abs(counts[s_next] / 2000 - p) < 0.05


def test_human_prior_is_boltzmann_over_shortest_path():
    w = world("#H..R#")
    goal = ReachGoal(0, frozenset({(0, 3)}))
    prior = BoltzmannHumanPrior(w, [[goal]], beta_h=1.0, epsilon_h=0.2)
    # Distances after each move: stay/up/down/left keep d = 2, right gives d = 1.
    boltzmann = np.array([math.e**-2] * 4 + [math.e**-1])
    boltzmann /= boltzmann.sum()
    np.testing.assert_allclose(prior.action_probs(w.initial_state(), goal), 0.8 * boltzmann + 0.2 / 5)


def test_human_prior_is_uniform_when_the_goal_is_cut_off():
    w = world("#Ho.#\n#R###")
    goal = ReachGoal(0, frozenset({(0, 3)}))
    prior = BoltzmannHumanPrior(w, [[goal]], beta_h=5.0, epsilon_h=0.0)
    np.testing.assert_allclose(prior.action_probs(w.initial_state(), goal), np.full(5, 0.2))


def test_human_prior_memo_serves_only_states_with_the_same_obstacles_and_human_cell():
    """The move probabilities are memoised on (goal, human cell, rocks, open doors): a state that
    differs in the robot's cell or the step count shares them, one with a rock or door elsewhere
    does not (it is recomputed, as a fresh prior computes it)."""
    w = world("#H.o.#\n###R##\n###D##\n###k##", max_steps=6)
    goal = ReachGoal(0, frozenset({(0, 4)}))

    def fresh(state):  # a new prior: nothing memoised
        return BoltzmannHumanPrior(w, [[goal]], beta_h=2.0, epsilon_h=0.1).action_probs(state, goal)

    prior = BoltzmannHumanPrior(w, [[goal]], beta_h=2.0, epsilon_h=0.1)
    s = w.initial_state()
    blocked = prior.action_probs(s, goal)
    np.testing.assert_allclose(blocked, np.full(5, 0.2))  # the rock cuts the human off its goal
    moved_robot = s._replace(t=3, agents=((2, 3), s.agents[1]))
    assert prior.action_probs(moved_robot, goal) is blocked
    rock_pushed = s._replace(rocks=((1, 3),))
    free = prior.action_probs(rock_pushed, goal)
    np.testing.assert_array_equal(free, fresh(rock_pushed))
    assert free[RIGHT] > 0.5
    door_open = rock_pushed._replace(open_doors=((2, 3),), key=None)
    np.testing.assert_array_equal(prior.action_probs(door_open, goal), fresh(door_open))


def test_goal_averaged_prior_and_successors():
    w = world("#H.R#", max_steps=3)
    goals = make_goals(w.grid, [[(0, 1), {"cells": (0, 2), "weight": 3}]])
    prior = BoltzmannHumanPrior(w, goals, beta_h=2.0, epsilon_h=0.1)
    s = w.initial_state()
    expected = 0.25 * prior.action_probs(s, goals[0][0]) + 0.75 * prior.action_probs(s, goals[0][1])
    np.testing.assert_allclose(prior.marginal_action_probs(s, 0), expected)
    # Robot moves left into (0, 2): when the human also heads there, the order decides.
    p_right = expected[RIGHT]
    succ = prior.successors(s, LEFT)
    assert sum(succ.values()) == pytest.approx(1.0)
    human_moved = sum(p for s2, p in succ.items() if s2.agents[1] == (0, 2))
    assert human_moved == pytest.approx(0.5 * p_right)
