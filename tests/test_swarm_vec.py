"""The SB3 adapter: agent slots, truncation vs termination, joint observations, seeding, env intake."""

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces
from multiagent_toys import CountdownEnv, one_torch_thread  # noqa: F401
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import DummyVecEnv

import sb3_ext  # noqa: F401  (registers Swarm2D-v0)
from sb3_ext.envs.swarm import swarm2d_v0
from sb3_ext.envs.swarm.vec import make_swarm2d_vec_env
from sb3_ext.multiagent.joint import ParallelJointEnv
from sb3_ext.multiagent.vec import (
    AgentSlotsVecEnv,
    agent_slots_of,
    make_parallel_vec_env,
    to_agent_slots,
)


def test_slots_carry_per_agent_rewards_and_time_limit_truncations():
    venv = make_parallel_vec_env(lambda: CountdownEnv(length=3, terminating=("b",)), n_copies=2)
    assert venv.num_envs == 6 and venv.action_space == spaces.Discrete(2)
    obs = venv.reset()
    np.testing.assert_array_equal(obs[:, 1], [0, 1, 2, 0, 1, 2])  # slot = copy * 3 + agent
    actions = np.array([1, 0, 0, 0, 0, 1])
    for step in range(1, 4):
        obs, rewards, dones, infos = venv.step(actions)
        np.testing.assert_allclose(rewards, [10, 1, 2, 0, 1, 12])
        if step < 3:
            assert not dones.any() and "terminal_observation" not in infos[0]
    assert dones.all()
    # Agents a and c hit the time limit (truncation), b terminated.
    assert [info["TimeLimit.truncated"] for info in infos] == [True, False, True] * 2
    for slot, info in enumerate(infos):
        np.testing.assert_array_equal(info["terminal_observation"], [3, slot % 3])
    np.testing.assert_array_equal(obs[:, 0], 0)  # the copies were reset
    # The copy's episode record appears once, in its first slot, with the summed return.
    assert [("episode" in info) for info in infos] == [True, False, False] * 2
    assert infos[0]["episode"]["r"] == pytest.approx(3 * (10 + 1 + 2))


def test_swarm_fast_path_truncates_with_terminal_observations():
    venv = make_swarm2d_vec_env(n_copies=3, seed=0, max_cycles=4)
    obs = venv.reset()
    assert obs.shape == (24, venv.observation_space.shape[0]) and venv.agent_teams == (0,) * 4 + (1,) * 4
    for _ in range(4):
        last = obs
        obs, _rewards, dones, infos = venv.step(np.zeros((24, 3)))
    assert dones.all() and all(info["TimeLimit.truncated"] for info in infos)
    for slot in range(24):
        # Zero thrust: only the velocity features decay, so the last observation is close to the
        # previous one, unlike the fresh episode's observation.
        assert np.abs(infos[slot]["terminal_observation"] - last[slot]).max() < 0.2
    assert not np.allclose(obs, last)
    assert infos[0]["episode"]["l"] == 4 and "delivered" in infos[0]["episode"]


def test_joint_observation_puts_each_agent_first():
    plain = make_swarm2d_vec_env(n_copies=2, seed=5)
    joint = make_swarm2d_vec_env(n_copies=2, seed=5, joint_observation=True)
    plain_obs, joint_obs = plain.reset(), joint.reset()
    assert joint_obs.shape == (16, 8, plain_obs.shape[1])
    for slot in range(16):
        copy, agent = divmod(slot, 8)
        expected = [plain_obs[copy * 8 + (agent + k) % 8] for k in range(8)]
        np.testing.assert_array_equal(joint_obs[slot], expected)


def test_seeding_reproduces_episodes_and_ppo_accepts_a_seed():
    first, second = make_swarm2d_vec_env(2, seed=7), make_swarm2d_vec_env(2, seed=7)
    np.testing.assert_array_equal(first.reset(), second.reset())
    # SuperSuit's VecEnv fails here under SB3 2.x (no seed()); ours goes through SB3's seeding.
    model = PPO("MlpPolicy", make_parallel_vec_env(CountdownEnv, 2), n_steps=8, batch_size=16, seed=0)
    model.learn(48)
    assert model.num_timesteps == 48


def test_every_kind_of_multi_agent_env_becomes_agent_slots():
    for env in (
        swarm2d_v0.parallel_env(),
        gym.make("Swarm2D-v0"),
        DummyVecEnv([lambda: ParallelJointEnv(swarm2d_v0.parallel_env())] * 2),
    ):
        venv = to_agent_slots(env)
        assert isinstance(venv, AgentSlotsVecEnv) and venv.n_agents == 8
        assert venv.reset().shape[0] == venv.num_envs
    slots = make_swarm2d_vec_env(1)
    assert to_agent_slots(slots) is slots and agent_slots_of(slots) is slots
    cartpole = DummyVecEnv([lambda: gym.make("CartPole-v1")])
    assert to_agent_slots(cartpole) is cartpole and agent_slots_of(cartpole) is None


def test_agents_with_different_spaces_are_rejected():
    env = CountdownEnv()
    env.action_space = lambda agent: spaces.Discrete(2 if agent == "a" else 3)
    with pytest.raises(ValueError, match="'b' has another action space"):
        ParallelJointEnv(env)
