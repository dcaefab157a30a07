"""REINFORCE: exact policy-gradient steps, complete-episode updates, action spaces, save/load, learning."""

import inspect

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.logger import configure

from sb3_ext.reinforce import REINFORCE

th.set_num_threads(1)  # small networks on a shared machine: one thread is faster


class OneStepBandit(gym.Env):
    """A single step from a constant zero observation; the reward depends on the action only."""

    observation_space = spaces.Box(-1.0, 1.0, (1,), dtype=np.float32)

    def __init__(self, action_space: spaces.Space | None = None):
        self.action_space = action_space or spaces.Discrete(3)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(1, dtype=np.float32), {}

    def step(self, action):
        reward = float(np.sum(action))
        return np.zeros(1, dtype=np.float32), reward, True, False, {}


def sgd_model(env: gym.Env, baseline: str | None, n_steps: int) -> REINFORCE:
    """Plain SGD with lr 1 and no clipping, so one update moves the parameters by exactly the gradient."""
    model = REINFORCE(
        "MlpPolicy",
        env,
        n_steps=n_steps,
        learning_rate=1.0,
        baseline=baseline,
        max_grad_norm=1e9,
        policy_kwargs=dict(net_arch=[], optimizer_class=th.optim.SGD),
        device="cpu",
        seed=0,
    )
    model.set_logger(configure(None, []))
    return model


def fill_one_step_episodes(model: REINFORCE, actions: list, rewards: list[float]) -> None:
    buffer = model.rollout_buffer
    buffer.reset()
    for action, reward in zip(actions, rewards, strict=False):
        buffer.add(np.zeros((1, 1)), np.array([action]), np.array([reward]), np.ones(1), th.zeros(1), th.zeros(1))
    buffer.compute_returns_and_advantage(th.zeros(1), np.array([True]))


@pytest.mark.parametrize("baseline", [None, "mean", "value"])
def test_bandit_step_is_the_analytic_softmax_policy_gradient(baseline):
    # pi = softmax(b) = (1/2, 1/4, 1/4), r = (1, 2, 4): J = pi . r = 2 and
    # dJ/db_a = pi_a (r_a - J) = (-1/2, 0, 1/2). A batch whose action counts are exactly
    # proportional to pi makes the estimate exact, and any constant baseline then cancels.
    model = sgd_model(OneStepBandit(), baseline, n_steps=4)
    logits = model.policy.action_net.bias
    with th.no_grad():
        logits.copy_(th.log(th.tensor([0.5, 0.25, 0.25])))
        model.policy.value_net.bias.fill_(1.5)  # a non-zero V(s) for baseline='value'
    before = logits.detach().clone()
    fill_one_step_episodes(model, actions=[0, 0, 1, 2], rewards=[1.0, 1.0, 2.0, 4.0])
    model.train()
    np.testing.assert_allclose((logits.detach() - before).numpy(), [-0.5, 0.0, 0.5], atol=1e-6)


def test_gaussian_step_is_the_score_function_estimate():
    # mu = 0, sigma = 1: d/dmu log N(a) = a and d/dlog_sigma log N(a) = a^2 - 1, so the plain
    # REINFORCE step is mean(r * a) = 5/4 for mu and mean(r * (a^2 - 1)) = 3/8 for log sigma.
    model = sgd_model(OneStepBandit(spaces.Box(-5.0, 5.0, (1,), dtype=np.float32)), None, n_steps=4)
    mu, log_std = model.policy.action_net.bias, model.policy.log_std
    fill_one_step_episodes(model, actions=[[-1.0], [0.5], [1.0], [2.0]], rewards=[1.0, 2.0, 3.0, 1.0])
    model.train()
    np.testing.assert_allclose(mu.detach().numpy(), [1.25], atol=1e-6)
    np.testing.assert_allclose(log_std.detach().numpy(), [0.375], atol=1e-6)


def test_every_update_uses_exactly_the_finished_episodes():
    env = make_vec_env("CartPole-v1", n_envs=2, seed=0)
    model = REINFORCE("MlpPolicy", env, n_steps=8, seed=0)  # much shorter than an episode
    trained = []
    original_train = model.train

    def recording_train() -> None:
        trained.append(model.rollout_buffer.n_transitions)
        original_train()

    model.train = recording_train
    model.learn(400)
    finished = [info["l"] for info in model.ep_info_buffer]
    assert 0 < len(finished) < model.ep_info_buffer.maxlen
    assert 0 in trained  # some rollouts had no finished episode and made no update
    assert sum(trained) == sum(finished)
    assert model._n_updates == sum(1 for n in trained if n > 0)


@pytest.mark.parametrize(
    "action_space",
    [spaces.Discrete(3), spaces.Box(-1.0, 1.0, (2,), np.float32), spaces.MultiDiscrete([2, 3]), spaces.MultiBinary(2)],
    ids=["Discrete", "Box", "MultiDiscrete", "MultiBinary"],
)
@pytest.mark.parametrize("baseline", [None, "value"])
def test_learn_logs_and_save_load_round_trip(action_space, baseline, tmp_path):
    model = REINFORCE("MlpPolicy", OneStepBandit(action_space), n_steps=16, baseline=baseline, seed=1)
    model.learn(64)
    logged = model.logger.name_to_value
    for key in ("train/policy_loss", "train/entropy", "train/return_mean", "train/episodes_per_update"):
        assert key in logged, key
    assert ("train/value_loss" in logged) == (baseline == "value")
    assert logged["train/episodes_per_update"] == 16

    model.save(tmp_path / "model.zip")
    loaded = REINFORCE.load(tmp_path / "model.zip", device="cpu")
    assert loaded.baseline == baseline
    observations = np.linspace(-1, 1, 10, dtype=np.float32).reshape(-1, 1)
    np.testing.assert_array_equal(
        model.predict(observations, deterministic=True)[0], loaded.predict(observations, deterministic=True)[0]
    )


def test_without_a_value_baseline_the_value_head_stays_zero():
    model = REINFORCE("MlpPolicy", "CartPole-v1", n_steps=64, baseline="mean", seed=0)
    model.learn(256)
    values = model.policy.predict_values(th.randn(5, 4))
    assert th.equal(values, th.zeros_like(values))


def test_api_defaults_and_bad_input():
    assert inspect.signature(REINFORCE.learn).parameters["tb_log_name"].default == "REINFORCE"
    defaults = inspect.signature(REINFORCE.__init__).parameters
    assert all(
        p.default is not inspect.Parameter.empty for name, p in defaults.items() if name not in ("self", "policy", "env")
    )
    with pytest.raises(ValueError, match=r"baseline.*'median'"):
        REINFORCE("MlpPolicy", "CartPole-v1", baseline="median")
    model = REINFORCE("MlpPolicy", "CartPole-v1", _init_setup_model=False)
    assert not hasattr(model, "policy") or model.policy is None


def test_cartpole_learns_with_a_value_baseline():
    env = make_vec_env("CartPole-v1", n_envs=8, seed=3)
    eval_env = make_vec_env("CartPole-v1", n_envs=1, seed=103)
    model = REINFORCE("MlpPolicy", env, n_steps=32, max_grad_norm=10.0, seed=3)
    untrained, _ = evaluate_policy(model, eval_env, n_eval_episodes=5, deterministic=True)
    model.learn(25_000)
    trained, _ = evaluate_policy(model, eval_env, n_eval_episodes=5, deterministic=True)
    assert trained >= max(200.0, 3 * untrained), (untrained, trained)
