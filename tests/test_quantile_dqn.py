"""QuantileDQN: risk measures, the loss against hand-computed values, risk-aware acting, diagnostics."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from stable_baselines3.common.logger import configure
from stable_baselines3.common.type_aliases import ReplayBufferSamples

from sb3_ext.quantile_dqn import QuantileDQN
from sb3_ext.quantile_dqn.risk import check_risk, cvar, quantile_spread, risk_score, value_at_risk

th.set_num_threads(1)


def test_risk_measures_against_hand_values():
    # Outputs deliberately unsorted: the measures sort them.
    q = th.tensor([[4.0, -2.0, 0.0, 10.0]])  # sorted: -2, 0, 4, 10, each with mass 1/4
    assert cvar(q, 0.25).item() == pytest.approx(-2.0)
    assert cvar(q, 0.5).item() == pytest.approx((-2.0 + 0.0) / 2)
    # alpha * n = 1.5: the lowest quantile in full, the next for half its mass.
    assert cvar(q, 0.375).item() == pytest.approx((-2.0 + 0.5 * 0.0) / 1.5)
    assert cvar(q, 1.0).item() == pytest.approx(3.0)
    assert value_at_risk(q, 0.25).item() == -2.0
    assert value_at_risk(q, 0.3).item() == 0.0
    assert value_at_risk(q, 0.75).item() == 4.0
    assert quantile_spread(q).item() == 4.0 - (-2.0)
    # 0.1 * 30 is 3.0000000000000004 in floating point: still the 3rd quantile.
    assert value_at_risk(th.arange(30.0).view(1, 30), 0.1).item() == 2.0
    # Per action along dim 1 of (batch, n_quantiles, n_actions).
    two_actions = th.tensor([[[0.0, 1.0], [10.0, 1.0]]])
    assert risk_score(two_actions, "mean", 0.5).tolist() == [[5.0, 1.0]]
    assert risk_score(two_actions, "cvar", 0.5).tolist() == [[0.0, 1.0]]


def test_bad_risk_options_name_the_culprit():
    with pytest.raises(ValueError, match="risk_measure='var'"):
        check_risk("var", 0.5)
    with pytest.raises(ValueError, match="risk_alpha=0"):
        check_risk("cvar", 0)
    with pytest.raises(ValueError, match=r"risk_alpha=1\.5"):
        QuantileDQN("MlpPolicy", "CartPole-v1", risk_measure="cvar", risk_alpha=1.5)
    with pytest.raises(ValueError, match=r"policy_kwargs\['risk_measure'\]"):
        QuantileDQN("MlpPolicy", "CartPole-v1", policy_kwargs=dict(risk_measure="cvar"))


def test_policy_kwargs_of_the_caller_are_left_alone():
    policy_kwargs = dict(n_quantiles=5)
    for risk_measure in ("cvar", "mean"):  # the same dict serves two models
        model = QuantileDQN("MlpPolicy", "CartPole-v1", risk_measure=risk_measure, policy_kwargs=policy_kwargs)
        assert model.quantile_net.risk_measure == risk_measure and model.n_quantiles == 5
    assert policy_kwargs == dict(n_quantiles=5)


def set_constant_quantiles(model: QuantileDQN, online: np.ndarray, target: np.ndarray) -> None:
    """Make the heads output fixed quantiles ``(n_critics, n_quantiles, n_actions)`` for any input."""
    for net, values in ((model.quantile_net, online), (model.quantile_net_target, target)):
        with th.no_grad():
            net.quantile_net.output.weight.zero_()
            net.quantile_net.output.bias.copy_(th.as_tensor(values, dtype=th.float32).reshape(-1))


# Two heads, two quantiles (levels 0.25 and 0.75), two actions; quantiles listed per action.
# Online heads:  a0: [-3, 5] and [-1, 7] (mean [-2, 6]: mean 2, CVaR_0.5 -2)
#                a1: [ 0, 2] and [ 2, 2] (mean [ 1, 2]: mean 1.5, CVaR_0.5 1)
# Target heads:  a0: [ 1, 3] and [ 0, 4];  a1: [2, 5] and [3, 4]
ONLINE = np.array([[[-3.0, 0.0], [5.0, 2.0]], [[-1.0, 2.0], [7.0, 2.0]]])
TARGET = np.array([[[1.0, 2.0], [3.0, 5.0]], [[0.0, 3.0], [4.0, 4.0]]])


@pytest.mark.parametrize(
    ("risk_measure", "expected_loss", "chosen"),
    [
        # mean picks a0 next: element-wise min of [1, 3] and [0, 4] = [0, 3]; target 1 + 0.5 * [0, 3].
        ("mean", 0.734375, dict(mean=2.0, cvar=-2.0, value_at_risk=-2.0, quantile_spread=8.0)),
        # CVaR_0.5 picks a1 next: min of [2, 5] and [3, 4] = [2, 4]; target 1 + 0.5 * [2, 4].
        ("cvar", 0.9375, dict(mean=1.5, cvar=1.0, value_at_risk=1.0, quantile_spread=1.0)),
    ],
)
def test_quantile_loss_against_hand_values(risk_measure, expected_loss, chosen):
    """Replayed: action 1, reward 1, not done, gamma 0.5. The expected losses were worked out by hand:
    per head, sum over current quantiles i of the mean over targets j of
    |tau_i - 1{delta_ij < 0}| * huber(delta_ij), with delta_ij = target_j - current_i; summed over heads."""
    model = QuantileDQN(
        "MlpPolicy", "CartPole-v1", gamma=0.5, risk_measure=risk_measure, risk_alpha=0.5, policy_kwargs=dict(n_quantiles=2)
    )
    set_constant_quantiles(model, ONLINE, TARGET)
    replay = ReplayBufferSamples(
        observations=th.zeros(1, 4),
        actions=th.tensor([[1]]),
        next_observations=th.zeros(1, 4),
        dones=th.zeros(1, 1),
        rewards=th.ones(1, 1),
    )
    loss, current = model._loss(replay)
    assert loss.item() == pytest.approx(expected_loss, rel=1e-6)
    assert np.allclose(current[0].numpy(), ONLINE)
    # Diagnostics: the replayed action a1 (head means 1 and 2), and the mean distribution of the action
    # the policy would choose: a0 [-2, 6] under the mean, a1 [1, 2] under CVaR_0.5.
    statistics = {key: value.item() for key, value in model._statistics(replay, current).items()}
    assert statistics["train/q_mean"] == pytest.approx(1.5)
    assert statistics["train/critic_gap"] == pytest.approx(1.0)
    assert statistics == pytest.approx(
        {"train/q_mean": 1.5, "train/critic_gap": 1.0, **{f"risk/{key}": value for key, value in chosen.items()}}
    )
    # Acting uses the same rule as the bootstrap: mean -> a0, CVaR -> a1.
    action, _ = model.predict(np.zeros(4, dtype=np.float32), deterministic=True)
    assert int(action) == (0 if risk_measure == "mean" else 1)
    assert np.allclose(model.predict_distribution(np.zeros(4, dtype=np.float32)), ONLINE.mean(axis=0))


def test_single_head_keeps_qrdqn_loss():
    """With one head and the target choosing the next action, the loss is sb3-contrib's QR-DQN loss."""
    model = QuantileDQN("MlpPolicy", "CartPole-v1", gamma=0.5, double_q=False, policy_kwargs=dict(n_quantiles=2, n_critics=1))
    set_constant_quantiles(model, ONLINE[:1], TARGET[:1])
    replay = ReplayBufferSamples(th.zeros(1, 4), th.tensor([[1]]), th.zeros(1, 4), th.zeros(1, 1), th.ones(1, 1))
    loss, _ = model._loss(replay)
    # The target head picks a1 ([2, 5], mean 3.5, over a0's [1, 3]): target = 1 + 0.5 * [2, 5] = [2, 3.5].
    # Current a1 = [0, 2]; i=0 (tau .25): deltas 2, 3.5 -> .25 * (1.5, 3.0) -> mean .5625;
    # i=1 (tau .75): deltas 0, 1.5 -> .75 * (0, 1.0) -> mean .375. Sum: .9375.
    assert loss.item() == pytest.approx(0.9375, rel=1e-6)


class TwoArmedBandit(gym.Env):
    """One-step episodes. Arm 0 pays 1 surely; arm 1 pays +5 or -2 with equal chance (mean 1.5)."""

    observation_space = spaces.Box(-1.0, 1.0, shape=(1,), dtype=np.float32)
    action_space = spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(1, dtype=np.float32), {}

    def step(self, action):
        reward = 1.0 if action == 0 else float(self.np_random.choice([5.0, -2.0]))
        return np.zeros(1, dtype=np.float32), reward, True, False, {}


def test_cvar_acting_picks_the_safe_arm_where_the_mean_picks_the_risky_one():
    choices, logs = {}, {}
    for risk_measure in ("mean", "cvar"):
        model = QuantileDQN(
            "MlpPolicy", TwoArmedBandit(), learning_rate=5e-3, learning_starts=64, batch_size=64, train_freq=2,
            # Uniformly random behaviour: both arms are sampled equally (the learning is off-policy).
            exploration_initial_eps=1.0, exploration_final_eps=1.0, risk_measure=risk_measure, risk_alpha=0.25,
            policy_kwargs=dict(net_arch=[32], n_quantiles=8), seed=0,
        )
        model.set_logger(configure(None, []))
        model.learn(800)
        choices[risk_measure] = int(model.predict(np.zeros(1, dtype=np.float32), deterministic=True)[0])
        logs[risk_measure] = dict(model.logger.name_to_value)
        quantiles = model.predict_distribution(np.zeros(1, dtype=np.float32))
        # The learned distributions: the safe arm is a point mass at 1, the risky arm is split -2 / +5.
        assert np.allclose(quantiles[:, 0], 1.0, atol=0.3)
        assert np.allclose(quantiles[:3, 1], -2.0, atol=0.6) and np.allclose(quantiles[-3:, 1], 5.0, atol=0.6)
    assert choices == {"mean": 1, "cvar": 0}
    # Diagnostics describe the chosen arm: the risky one under the mean, the safe one under CVaR.
    assert logs["mean"]["risk/cvar"] == pytest.approx(-2.0, abs=0.6)
    assert logs["mean"]["risk/quantile_spread"] == pytest.approx(7.0, abs=1.2)
    assert logs["cvar"]["risk/cvar"] == pytest.approx(1.0, abs=0.3)
    assert logs["cvar"]["risk/value_at_risk"] == pytest.approx(1.0, abs=0.3)
    assert logs["cvar"]["risk/quantile_spread"] == pytest.approx(0.0, abs=0.5)
    for key in ("risk/mean", "train/loss", "train/q_mean", "train/critic_gap"):
        assert np.isfinite(logs["cvar"][key]), key
