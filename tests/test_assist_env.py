"""``AssistGrid-v0`` as a gymnasium environment."""

import copy

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import sb3_ext  # noqa: F401  (registers AssistGrid-v0)
from sb3_ext.envs.assist import MAPS
from sb3_ext.envs.assist.env import AssistGridEnv
from sb3_ext.envs.assist.world import STAY


@pytest.mark.parametrize("map_name", sorted(MAPS))
def test_passes_gymnasium_check_env(map_name):
    env = gym.make("AssistGrid-v0", map_name=map_name, max_steps=5)
    check_env(env.unwrapped, skip_render_check=True)


def rollout(env, seed, actions):
    obs, info = env.reset(seed=seed)
    trace = [obs]
    for a in actions:
        obs, _reward, terminated, _truncated, info = env.step(a)
        trace.append(obs)
        if terminated:
            break
    return np.array(trace), info


def test_episode_ends_at_the_horizon_and_is_reproducible():
    env = gym.make("AssistGrid-v0", map_name="rock", max_steps=4)
    actions = [1, 2, 0, 0, 0, 0]
    a, info = rollout(env, 3, actions)
    b, _ = rollout(env, 3, actions)
    assert len(a) == 5 and np.array_equal(a, b)
    assert info["state"].t == 4
    world = env.unwrapped.world
    assert world.decode(a[-1]) == info["state"]


def test_humans_follow_the_prior_and_report_their_goals():
    env = gym.make("AssistGrid-v0", map_name="line", max_steps=3, beta_h=50.0, epsilon_h=0.0)
    far = next(i for i, g in enumerate(env.unwrapped.goals[0]) if g.cells == frozenset({(1, 3)}))
    for seed in range(20):
        _, info = env.reset(seed=seed)
        if info["goals"] == (far,):
            break
    else:
        pytest.fail("no episode drew the far goal")
    _, reward, _, _, info = env.step(STAY)
    assert info["state"].agents[1] == (1, 2)  # a near-greedy human walks toward its goal
    _, reward, _, _, info = env.step(STAY)
    assert info["state"].agents[1] == (1, 3) and reward == 1.0 and info["goals_reached"] == (True,)


def test_goal_resampling():
    env = gym.make("AssistGrid-v0", map_name="room3", max_steps=50, goal_resample_prob=1.0)
    _, info = env.reset(seed=0)
    goals = {info["goals"]}
    for _ in range(20):
        goals.add(env.step(STAY)[-1]["goals"])
    assert len(goals) > 3
    env = gym.make("AssistGrid-v0", map_name="room3", max_steps=50, goal_resample_prob=0.0)
    _, info = env.reset(seed=0)
    assert {env.step(STAY)[-1]["goals"] for _ in range(20)} == {info["goals"]}


def test_text_maps_goals_and_render():
    env = gym.make("AssistGrid-v0", map_text="#H.R#", goals=[[(0, 1), (0, 2)]], render_mode="ansi", max_steps=2)
    env.reset(seed=0)
    assert env.render().splitlines()[0] == "#H.R#"
    assert len(env.unwrapped.goals[0]) == 2
    env = gym.make("AssistGrid-v0", map_text="#H.R#", render_mode="rgb_array")
    env.reset(seed=0)
    image = env.render()
    assert image.shape == (16, 80, 3) and image.dtype == np.uint8
    assert tuple(image[8, 8 + 16]) == (240, 170, 30) and tuple(image[8, 8 + 48]) == (40, 90, 220)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"map_name": "nope"}, "unknown map 'nope'"),
        ({"max_steps": 0}, "max_steps"),
        ({"beta_h": -1.0}, "beta_h"),
        ({"epsilon_h": 2.0}, "epsilon_h"),
        ({"goal_resample_prob": -0.5}, "goal_resample_prob"),
        ({"render_mode": "human"}, "render_mode: 'human'"),
    ],
)
def test_bad_arguments_are_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        AssistGridEnv(**kwargs)


def test_invalid_action_is_rejected():
    env = gym.make("AssistGrid-v0").unwrapped
    env.reset(seed=0)
    with pytest.raises(ValueError, match="action: 7"):
        env.step(7)


def test_a_deep_copied_env_shares_the_immutable_state_and_then_goes_its_own_way():
    # GridState's deep copy is the state itself (SB3's DummyVecEnv deep-copies every info dict)
    env = gym.make("AssistGrid-v0", map_name="rock", max_steps=6).unwrapped
    env.reset(seed=3)
    twin = copy.deepcopy(env)
    assert twin.state is env.state
    twin.np_random = np.random.default_rng(5)  # different draws from here on
    for _ in range(5):
        env.step(0)
        twin.step(1)
    assert twin.state != env.state and twin.state.t == env.state.t == 5
    copied = copy.deepcopy({"state": env.state, "goals": (0,)})
    assert copied["state"] is env.state
