"""RLHFRewardRelabel inside real SB3 learn() loops: exact relabelled rewards and returns, logs, evidence."""

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from stable_baselines3 import A2C, DQN, PPO, SAC, TD3
from stable_baselines3.common.buffers import RolloutBuffer
from stable_baselines3.common.env_util import make_vec_env

from sb3_ext.delayed_td3 import DelayedTD3
from sb3_ext.quantile_dqn import QuantileDQN
from sb3_ext.reinforce import REINFORCE
from sb3_ext.rlhf import (
    FileFeedback,
    PreferenceFeedback,
    RLHFConfig,
    ScriptedFeedback,
    preference_from_rater,
)
from sb3_ext.rlhf.relabel import RLHFRewardRelabel
from sb3_ext.twin_dqn import TwinDQN

th.set_num_threads(1)  # small networks on a shared machine: one thread is faster

WEIGHT = 0.5
EPISODE_LENGTH = 5


class ToyEnv(gym.Env):
    """Random observations; the reward is obs[0] of the state acted in; episodes last 5 steps."""

    observation_space = spaces.Box(-1.0, 1.0, (2,), dtype=np.float32)

    def __init__(self, continuous: bool = False):
        self.action_space = spaces.Box(-1.0, 1.0, (1,), dtype=np.float32) if continuous else spaces.Discrete(2)

    def _observe(self) -> np.ndarray:
        self._obs = self.np_random.uniform(-1, 1, 2).astype(np.float32)
        return self._obs

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self._t = 0
        return self._observe(), {}

    def step(self, action):
        reward = float(self._obs[0])
        self._t += 1
        return self._observe(), reward, self._t == EPISODE_LENGTH, False, {}


def obs_rater(obs, action, next_obs):
    return float(next_obs[1] - 2.0 * obs[1])


OFF_POLICY = [
    (DQN, False, {}),
    (TwinDQN, False, {}),
    (QuantileDQN, False, {}),
    (SAC, True, {}),
    (TD3, True, {}),
    (DelayedTD3, True, {}),
]


@pytest.mark.parametrize("algo, continuous, kwargs", OFF_POLICY, ids=[a.__name__ for a, _, _ in OFF_POLICY])
def test_off_policy_replay_buffer_holds_env_reward_plus_feedback_once(algo, continuous, kwargs):
    env = make_vec_env(lambda: ToyEnv(continuous), n_envs=2, seed=0)
    # 14 transitions = 7 positions of 2 envs, written 20 times: it wraps around; window 5 < 7
    model = algo("MlpPolicy", env, buffer_size=14, learning_starts=10_000, train_freq=1, seed=0, **kwargs)
    callback = RLHFRewardRelabel(RLHFConfig(feedback_weight=WEIGHT, window=5, sources=[ScriptedFeedback(obs_rater)]))
    model.learn(40, callback=callback)
    buffer = model.replay_buffer
    assert buffer.full and buffer.pos == 40 // 2 % 7
    feedback = buffer.next_observations[..., 1] - 2.0 * buffer.observations[..., 1]
    np.testing.assert_allclose(buffer.rewards, buffer.observations[..., 0] + WEIGHT * feedback, atol=1e-6)


def test_late_feedback_reaches_only_the_window(tmp_path):
    path = tmp_path / "ratings.jsonl"
    path.touch()
    env = make_vec_env(ToyEnv, n_envs=1, seed=0)
    model = DQN("MlpPolicy", env, buffer_size=100, learning_starts=10_000, train_freq=1, seed=0)
    callback = RLHFRewardRelabel(RLHFConfig(feedback_weight=1.0, window=3, sources=[FileFeedback(path)]))
    model.learn(10, callback=callback)  # episodes 0 (positions 0-4) and 1 (positions 5-9)
    path.write_text('{"episode": 1, "start": 0, "end": 5, "score": 2.0}\n{"episode": 0, "start": 0, "end": 5, "score": 9}\n')
    with pytest.warns(UserWarning, match=":2: skipped rating: episode 0 is not among the recent transitions"):
        model.learn(1, callback=callback, reset_num_timesteps=False)  # relabels positions 8, 9, 10
    buffer = model.replay_buffer
    adjustment = buffer.rewards[:11, 0] - buffer.observations[:11, 0, 0]
    # Episode 0 left the log before its rating arrived (so did its positions); positions 5-7 had left the window.
    np.testing.assert_allclose(adjustment, [0] * 8 + [2.0, 2.0, 0.0], atol=1e-6)


@pytest.mark.parametrize(
    "reset, episodes, steps",
    [(False, [0, 0, 0, 0, 0, 1, 1], [0, 1, 2, 3, 4, 0, 1]), (True, [0, 0, 0, 1, 1, 1, 1], [0, 1, 2, 0, 1, 2, 3])],
    ids=["continued", "reset"],
)
def test_episodes_continue_across_learn_calls_unless_the_env_is_reset(reset, episodes, steps):
    model = DQN("MlpPolicy", make_vec_env(ToyEnv, n_envs=1, seed=0), learning_starts=10_000, train_freq=1, seed=0)
    callback = RLHFRewardRelabel(RLHFConfig(sources=[ScriptedFeedback(obs_rater)]))
    model.learn(3, callback=callback)
    model.learn(4, callback=callback, reset_num_timesteps=reset)
    slots = callback.log.slots(0, 7)
    np.testing.assert_array_equal(callback.log.episodes[slots, 0], episodes)
    np.testing.assert_array_equal(callback.log.steps[slots, 0], steps)


def rollout_rewards_at_train(model) -> dict:
    """Run one rollout and capture the rollout buffer as train() receives it."""
    seen = {}

    def capture() -> None:
        buffer = model.rollout_buffer
        seen.update(
            observations=buffer.observations.copy(),
            actions=buffer.actions.copy(),
            rewards=buffer.rewards.copy(),
            returns=buffer.returns.copy(),
            values=buffer.values.copy(),
            episode_starts=buffer.episode_starts.copy(),
            batch=dict(getattr(buffer, "batch", {})),
        )

    model.train = capture
    return seen


def action_rater(obs, action, next_obs):
    return float(obs[1] + 0.5 * action)


@pytest.mark.parametrize("algo", [PPO, A2C])
def test_on_policy_returns_are_recomputed_from_relabelled_rewards(algo):
    env = make_vec_env(ToyEnv, n_envs=2, seed=0)
    model = algo("MlpPolicy", env, n_steps=8, seed=0, **({"batch_size": 16} if algo is PPO else {}))
    seen = rollout_rewards_at_train(model)
    callback = RLHFRewardRelabel(RLHFConfig(feedback_weight=WEIGHT, window=6, sources=[ScriptedFeedback(action_rater)]))
    model.learn(16, callback=callback)

    feedback = seen["observations"][..., 1] + 0.5 * seen["actions"][..., 0]
    feedback[:2] = 0.0  # outside the window of the last 6 positions
    np.testing.assert_allclose(seen["rewards"], seen["observations"][..., 0] + WEIGHT * feedback, atol=1e-6)
    # Returns as SB3 computes them from these rewards, with the rollout's last values and dones.
    reference = RolloutBuffer(
        8, env.observation_space, env.action_space, gamma=model.gamma, gae_lambda=model.gae_lambda, n_envs=2
    )
    reference.rewards, reference.values, reference.episode_starts = seen["rewards"], seen["values"], seen["episode_starts"]
    with th.no_grad():
        last_values = model.policy.predict_values(model.policy.obs_to_tensor(model._last_obs)[0])
    reference.compute_returns_and_advantage(last_values, model._last_episode_starts)
    np.testing.assert_allclose(seen["returns"], reference.returns, rtol=1e-5, atol=1e-6)


def test_reinforce_reward_to_go_uses_relabelled_rewards():
    env = make_vec_env(ToyEnv, n_envs=2, seed=0)
    model = REINFORCE("MlpPolicy", env, n_steps=EPISODE_LENGTH, gamma=0.9, seed=0)  # one whole episode per rollout
    seen = rollout_rewards_at_train(model)
    callback = RLHFRewardRelabel(RLHFConfig(feedback_weight=WEIGHT, sources=[ScriptedFeedback(action_rater)]))
    model.learn(2 * EPISODE_LENGTH, callback=callback)

    rewards = seen["observations"][..., 0] + WEIGHT * (seen["observations"][..., 1] + 0.5 * seen["actions"][..., 0])
    np.testing.assert_allclose(seen["rewards"], rewards, atol=1e-6)
    expected = np.zeros_like(rewards)
    for t in reversed(range(EPISODE_LENGTH)):
        expected[t] = rewards[t] + (0.9 * expected[t + 1] if t + 1 < EPISODE_LENGTH else 0.0)
    np.testing.assert_allclose(seen["batch"]["returns"], expected.T.ravel(), rtol=1e-5)


@pytest.mark.parametrize("sign, agreement", [(1.0, 1.0), (-1.0, -1.0)])
def test_logs_feedback_count_adjustment_and_agreement(sign, agreement):
    env = make_vec_env(ToyEnv, n_envs=2, seed=0)
    model = A2C("MlpPolicy", env, n_steps=10, seed=0)
    recorded = {}
    model.train = lambda: recorded.update(model.logger.name_to_value)  # logs of the rollout just collected
    rater = ScriptedFeedback(lambda obs, action, next_obs: sign * float(obs[0]))
    model.learn(20, callback=RLHFRewardRelabel(RLHFConfig(feedback_weight=2.0, min_feedback=1, sources=[rater])))
    assert recorded["rlhf/feedback_count"] == 20
    assert recorded["rlhf/agreement"] == pytest.approx(agreement, abs=1e-6)
    observed = model.rollout_buffer.observations[..., 0]
    assert recorded["rlhf/mean_adjustment"] == pytest.approx(2.0 * sign * observed.mean(), abs=1e-5)


def test_min_feedback_leaves_thinly_rated_transitions_alone():
    twice = [ScriptedFeedback(lambda obs, action, next_obs: 1.0), ScriptedFeedback(lambda segment: 3.0, segment_length=5)]
    once = [ScriptedFeedback(lambda obs, action, next_obs: 1.0)]
    for sources, expected in ((twice, 2.0), (once, 0.0)):
        model = DQN("MlpPolicy", make_vec_env(ToyEnv, n_envs=1, seed=0), buffer_size=50, learning_starts=10_000, seed=0)
        model.learn(10, callback=RLHFRewardRelabel(RLHFConfig(min_feedback=2, sources=sources)))
        buffer = model.replay_buffer
        np.testing.assert_allclose(buffer.rewards[:10, 0] - buffer.observations[:10, 0, 0], expected, atol=1e-6)


def centre_rater(obs, action, next_obs):
    return -abs(float(next_obs[0]))


def train_cartpole(callback) -> tuple[float, float]:
    """PPO (rl-zoo3's CartPole settings, constant rates), then mean |x| and length of deterministic episodes."""
    model = PPO(
        "MlpPolicy",
        make_vec_env("CartPole-v1", n_envs=8, seed=0),
        n_steps=32,
        batch_size=256,
        gae_lambda=0.8,
        gamma=0.98,
        n_epochs=20,
        learning_rate=1e-3,
        seed=0,
    )
    model.learn(CARTPOLE_STEPS, callback=callback)
    env = make_vec_env("CartPole-v1", n_envs=1, seed=1000)
    positions, lengths = [], []
    for _ in range(3):
        obs, done = env.reset(), False
        lengths.append(0)
        while not done:
            positions.append(abs(obs[0, 0]))
            obs, _, dones, _ = env.step(model.predict(obs, deterministic=True)[0])
            done, lengths[-1] = dones[0], lengths[-1] + 1
    return float(np.mean(positions)), float(np.mean(lengths))


CARTPOLE_STEPS = 25_000


@pytest.fixture(scope="module")
def without_feedback() -> tuple[float, float]:
    return train_cartpole(None)


def test_scripted_centre_rater_keeps_the_cart_nearer_the_centre(without_feedback):
    config = RLHFConfig(feedback_weight=0.5, sources=[ScriptedFeedback(centre_rater)])
    (x, length), (plain_x, plain_length) = train_cartpole(RLHFRewardRelabel(config)), without_feedback
    assert x < 0.5 * plain_x, (x, plain_x)
    assert length >= 0.9 * plain_length, (length, plain_length)


def test_preferences_from_the_same_rater_have_the_same_effect(without_feedback):
    source = PreferenceFeedback(preference_from_rater(centre_rater), segment_length=10, seed=0)
    config = RLHFConfig(feedback_weight=0.5, aggregation="bradley_terry", sources=[source], reward_model_kwargs={"seed": 0})
    (x, length), (plain_x, plain_length) = train_cartpole(RLHFRewardRelabel(config)), without_feedback
    assert x < 0.5 * plain_x, (x, plain_x)
    assert length >= 0.9 * plain_length, (length, plain_length)
