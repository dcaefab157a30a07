"""DictNStepReplayBuffer: against SB3's NStepReplayBuffer on the same transitions, and inside SB3's DQN."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from stable_baselines3 import DQN
from stable_baselines3.common.buffers import NStepReplayBuffer

import sb3_ext
from sb3_ext.common.buffers import DictNStepReplayBuffer


@pytest.mark.parametrize("n_added", [13, 47], ids=["partly_filled", "wrapped_around"])
def test_samples_match_sb3_n_step_buffer_on_the_same_transitions(n_added):
    """Three envs, random terminations and truncations; with 47 rows added to 20 the ring has wrapped
    twice, so windows meet both the newest row and episode ends. Every field must be equal."""
    rng = np.random.default_rng(0)
    rows, n_envs = 20, 3
    box = spaces.Box(-10.0, 10.0, shape=(2,), dtype=np.float32)
    kwargs = dict(n_envs=n_envs, n_steps=4, gamma=0.9)
    # SB3 buffers hold buffer_size // n_envs rows of n_envs transitions.
    flat = NStepReplayBuffer(rows * n_envs, box, spaces.Discrete(3), **kwargs)
    ours = DictNStepReplayBuffer(rows * n_envs, spaces.Dict({"x": box}), spaces.Discrete(3), **kwargs)
    for _ in range(n_added):
        obs, next_obs = rng.normal(size=(2, n_envs, 2)).astype(np.float32)
        actions = rng.integers(3, size=(n_envs, 1))
        rewards = rng.normal(size=n_envs).astype(np.float32)
        dones = rng.random(n_envs) < 0.25
        infos = [{"TimeLimit.truncated": bool(done and rng.random() < 0.5)} for done in dones]
        flat.add(obs, next_obs, actions, rewards, dones, infos)
        ours.add({"x": obs}, {"x": next_obs}, actions, rewards, dones, infos)

    batch_inds = np.tile(np.arange(min(n_added, rows)), 20)
    np.random.seed(1)  # both draw the env of each sample from NumPy's global generator
    expected = flat._get_samples(batch_inds)
    np.random.seed(1)
    sample = ours._get_samples(batch_inds)

    assert th.equal(sample.observations["x"], expected.observations)
    assert th.equal(sample.next_observations["x"], expected.next_observations)
    for field in ("actions", "dones", "rewards", "discounts"):
        assert th.allclose(getattr(sample, field), getattr(expected, field), rtol=1e-6, atol=1e-6), field
    # The data exercise every case: full 4-step windows and windows cut short.
    assert np.isclose(sample.discounts.numpy(), 0.9**4).any() and (sample.discounts.numpy() > 0.9**4 + 1e-6).any()


def test_sb3_dqn_trains_on_it_with_n_step_discounts():
    """Any SB3 off-policy algorithm can take it as its replay_buffer_class (SB3 2.9 bootstraps with
    the samples' discounts when they are given)."""
    env = gym.make("CartPole-v1")
    env = gym.wrappers.TransformObservation(
        env, lambda obs: {"state": obs}, spaces.Dict({"state": env.observation_space})
    )
    model = DQN(
        "MultiInputPolicy",
        env,
        replay_buffer_class=sb3_ext.DictNStepReplayBuffer,
        replay_buffer_kwargs=dict(n_steps=3, gamma=0.9),
        learning_starts=32,
        batch_size=32,
        train_freq=32,
        seed=0,
    )
    model.learn(128)
    assert model._n_updates > 0
    assert np.isclose(model.replay_buffer.sample(64).discounts.numpy(), 0.9**3).any()
