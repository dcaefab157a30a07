"""Evaluating multi-agent models in the joint env rl-zoo3 builds (EvalCallback, Optuna, enjoy)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv

from sb3_ext.multiagent.vec import AgentSlotsVecEnv
from sb3_ext.shared_actor import SharedActor
from sb3_ext.zoo.multi_agent import JointEpisodeView, evaluation_view

MAX_CYCLES = 20


def joint_env(n_copies: int = 2) -> DummyVecEnv:
    """What rl-zoo3 builds for ``--env Swarm2D-v0``: Monitor-wrapped joint envs."""
    return DummyVecEnv([lambda: Monitor(gym.make("Swarm2D-v0", max_cycles=MAX_CYCLES))] * n_copies)


@pytest.mark.parametrize("joint_observation", [False, True])
def test_view_shows_training_slots_to_the_model_and_copies_to_the_loop(joint_observation):
    view = JointEpisodeView(joint_env(), joint_observation=joint_observation)
    slots = AgentSlotsVecEnv(joint_env(), joint_observation=joint_observation)
    view.seed(5)
    slots.seed(5)
    np.testing.assert_array_equal(view.reset(), slots.reset())
    actions = np.random.default_rng(0).uniform(-1, 1, (slots.num_envs, 3)).astype(np.float32)
    view_obs, view_rewards, view_dones, _ = view.step(actions)
    slot_obs, slot_rewards, _slot_dones, _ = slots.step(actions)
    np.testing.assert_array_equal(view_obs, slot_obs)
    np.testing.assert_allclose(view_rewards, slot_rewards.reshape(2, -1).sum(axis=1), rtol=1e-6)
    assert view.num_envs == 2 and view_dones.shape == (2,)


@pytest.mark.parametrize("policy", ["MlpPolicy", "NCAPolicy"])
def test_evaluate_policy_counts_whole_episodes_of_each_copy(policy):
    """On the slot env itself evaluate_policy would wait forever for episodes in slots that never
    carry the Monitor record; on the view it counts each copy's episodes."""
    model = SharedActor(policy, gym.make("Swarm2D-v0", max_cycles=MAX_CYCLES), n_steps=8, batch_size=8, seed=0)
    view = evaluation_view(joint_env(), policy)
    assert isinstance(view, JointEpisodeView)
    rewards, lengths = evaluate_policy(model, view, n_eval_episodes=4, return_episode_rewards=True)
    assert lengths == [MAX_CYCLES] * 4 and len(rewards) == 4


def test_single_agent_envs_are_left_alone():
    env = DummyVecEnv([lambda: gym.make("CartPole-v1")])
    assert evaluation_view(env, "MlpPolicy") is env
