"""TwinDQN: the bootstrap rule and loss against hand-computed values, soft targets (also QuantileDQN's),
logs, learning."""

from __future__ import annotations

import numpy as np
import pytest
import torch as th
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.logger import configure
from stable_baselines3.common.type_aliases import ReplayBufferSamples

from sb3_ext.common.critic_heads import CriticHeads, check_n_critics
from sb3_ext.common.targets import (
    bootstrap_values,
    check_target_reduction,
    critic_gap,
    evaluate_at_actions,
    td_target,
)
from sb3_ext.quantile_dqn import QuantileDQN
from sb3_ext.twin_dqn import TwinDQN

th.set_num_threads(1)


def set_constant_heads(heads: CriticHeads, values: np.ndarray) -> None:
    """Make every critic output ``values[critic]`` whatever the input (zero weights, bias = values)."""
    with th.no_grad():
        heads.output.weight.zero_()
        heads.output.bias.copy_(th.as_tensor(values, dtype=th.float32).reshape(-1))


def batch(actions, rewards, dones, discounts=None) -> ReplayBufferSamples:
    n = len(actions)
    return ReplayBufferSamples(
        observations=th.zeros(n, 4),
        actions=th.tensor(actions).view(n, 1),
        next_observations=th.zeros(n, 4),
        dones=th.tensor(dones, dtype=th.float32).view(n, 1),
        rewards=th.tensor(rewards, dtype=th.float32).view(n, 1),
        discounts=None if discounts is None else th.tensor(discounts, dtype=th.float32).view(n, 1),
    )


def test_bootstrap_rule_against_hand_values():
    # (batch=1, n_critics=2, k=1, n_actions=3)
    heads = th.tensor([[[[5.0, 2.0, 0.0]], [[4.0, 6.0, 1.0]]]])
    actions = th.tensor([1])
    assert evaluate_at_actions(heads, actions).flatten().tolist() == [2.0, 6.0]
    assert bootstrap_values(heads, actions, "min").item() == 2.0
    assert bootstrap_values(heads, actions, "mean").item() == 4.0
    # r + (1 - done) * discount * v with a per-sample n-step discount and a terminal sample.
    target = td_target(
        rewards=th.tensor([[1.0], [0.5]]),
        dones=th.tensor([[0.0], [1.0]]),
        discounts=th.tensor([[0.729], [0.9]]),
        next_values=th.tensor([[2.0], [7.0]]),
    )
    assert th.allclose(target, th.tensor([[1.0 + 0.729 * 2.0], [0.5]]))
    assert critic_gap(th.tensor([[1.0, 3.0], [2.0, 1.0]])).item() == pytest.approx((1.0 + 2.0) / 2)


# Online heads: Q1 = [1, 3], Q2 = [2, 1] (mean [1.5, 2] -> double Q picks action 1).
# Target heads: Q1' = [5, 2], Q2' = [4, 6] (mean [4.5, 4] -> the target alone would pick action 0).
# Batch: (a=0, r=1, not done), (a=1, r=0.5, done).
@pytest.mark.parametrize(
    ("kwargs", "discounts", "expected_target0"),
    [
        (dict(), None, 1 + 0.9 * 2),  # double + min: min(Q1'[1], Q2'[1]) = 2
        (dict(target_reduction="mean"), None, 1 + 0.9 * 4),  # (2 + 6) / 2
        (dict(double_q=False), None, 1 + 0.9 * 4),  # action 0: min(5, 4)
        (dict(), [0.729, 0.9], 1 + 0.729 * 2),  # n-step discounts from the buffer replace gamma
    ],
)
def test_td_loss_against_hand_values(kwargs, discounts, expected_target0):
    model = TwinDQN("MlpPolicy", "CartPole-v1", gamma=0.9, **kwargs)
    set_constant_heads(model.q_net.q_net, np.array([[1.0, 3.0], [2.0, 1.0]]))
    set_constant_heads(model.q_net_target.q_net, np.array([[5.0, 2.0], [4.0, 6.0]]))

    replay = batch([0, 1], [1.0, 0.5], [0.0, 1.0], discounts)
    loss, current = model._loss(replay)

    def huber(x: float) -> float:
        return 0.5 * x * x if abs(x) <= 1 else abs(x) - 0.5

    # Each head's mean Huber loss over the batch, summed over heads; sample 1 is terminal: target 0.5.
    expected = (huber(1 - expected_target0) + huber(3 - 0.5)) / 2 + (huber(2 - expected_target0) + huber(1 - 0.5)) / 2
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    # Replayed actions: sample 0 took a0 (Q1 1, Q2 2), sample 1 took a1 (Q1 3, Q2 1).
    statistics = model._statistics(replay, current)
    assert statistics["train/q_mean"].item() == pytest.approx((1 + 2 + 3 + 1) / 4)
    assert statistics["train/critic_gap"].item() == pytest.approx((1 + 2) / 2)


@pytest.mark.parametrize("algo", [TwinDQN, QuantileDQN], ids=lambda a: a.__name__)
@pytest.mark.parametrize("tau", [0.25, 1.0])
def test_soft_and_hard_target_updates(algo, tau):
    model = algo("MlpPolicy", "CartPole-v1", tau=tau, target_update_interval=2, learning_starts=0)
    model.set_logger(configure(None, []))
    online_net, target_net = (
        (model.q_net, model.q_net_target) if algo is TwinDQN else (model.quantile_net, model.quantile_net_target)
    )
    online = [p.detach().clone() for p in online_net.parameters()]
    with th.no_grad():
        for p in target_net.parameters():
            p.fill_(1.0)
    model._on_step()  # step 1: no update yet
    assert all(th.all(p == 1.0) for p in target_net.parameters())
    model._on_step()  # step 2: target <- tau * online + (1 - tau) * target
    for p, q in zip(online, target_net.parameters(), strict=True):
        assert th.allclose(q, tau * p + (1 - tau) * 1.0)


def test_bad_options_name_the_culprit():
    with pytest.raises(ValueError, match="target_reduction='max'"):
        check_target_reduction("max")
    with pytest.raises(ValueError, match="target_reduction='median'"):
        TwinDQN("MlpPolicy", "CartPole-v1", target_reduction="median")
    with pytest.raises(ValueError, match="n_critics=0"):
        check_n_critics(0)
    with pytest.raises(ValueError, match="n_critics=0"):
        TwinDQN("MlpPolicy", "CartPole-v1", policy_kwargs=dict(n_critics=0))


@pytest.mark.parametrize("share_trunk", [True, False])
def test_heads_are_independent_outputs(share_trunk):
    heads = CriticHeads(
        features_dim=3, out_dim=2, net_arch=[8], activation_fn=th.nn.ReLU, n_critics=3, share_trunk=share_trunk
    )
    out = heads(th.randn(5, 3))
    assert out.shape == (5, 3, 2)
    # Different initialisations: the heads disagree (the min over them is not a no-op).
    assert not th.allclose(out[:, 0], out[:, 1])


LOGGED = {
    TwinDQN: ("train/loss", "train/q_mean", "train/critic_gap"),
    QuantileDQN: (
        "train/loss",
        "train/q_mean",
        "train/critic_gap",
        "risk/mean",
        "risk/cvar",
        "risk/value_at_risk",
        "risk/quantile_spread",
    ),
}


@pytest.mark.parametrize("algo", [TwinDQN, QuantileDQN], ids=lambda a: a.__name__)
def test_logs_every_update(algo):
    model = algo("MlpPolicy", "CartPole-v1", learning_starts=32, train_freq=8, gradient_steps=4, seed=0)
    model.set_logger(configure(None, []))
    recorded = []
    record = model.logger.record
    model.logger.record = lambda key, value, exclude=None: recorded.append(key) or record(key, value, exclude)
    model.learn(200)
    values = model.logger.name_to_value
    assert values["train/n_updates"] == model._n_updates > 0
    # Every train() call (one per rollout of train_freq steps past learning_starts) logs every key.
    n_train_calls = model._n_updates // 4
    for key in LOGGED[algo]:
        assert recorded.count(key) == n_train_calls, key
        assert np.isfinite(values[key]), key
    assert values["train/critic_gap"] > 0
    if algo is QuantileDQN:
        assert values["risk/cvar"] <= values["risk/mean"] and values["risk/quantile_spread"] >= 0


def test_learns_cartpole_better_than_untrained():
    """A short run with rl-zoo3-like settings beats the untrained policy of the same seed."""

    def make(seed: int) -> TwinDQN:
        return TwinDQN(
            "MlpPolicy",
            "CartPole-v1",
            learning_rate=2.3e-3,
            batch_size=64,
            learning_starts=500,
            gamma=0.99,
            target_update_interval=10,
            train_freq=64,
            gradient_steps=32,
            exploration_fraction=0.3,
            exploration_final_eps=0.04,
            policy_kwargs=dict(net_arch=[64, 64]),
            seed=seed,
        )

    model = make(1)
    untrained, _ = evaluate_policy(model, model.get_env(), n_eval_episodes=5)
    model.learn(6000)
    trained, _ = evaluate_policy(model, model.get_env(), n_eval_episodes=5)
    assert trained > 3 * untrained, (untrained, trained)
