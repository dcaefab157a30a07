"""TD3+BC's cloning term during a DelayedTD3's own training, and the hand-over that installs it."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch as th
from stable_baselines3 import TD3
from stable_baselines3.common.logger import configure

from sb3_ext.common.demonstrations import DemonstrationCloning
from sb3_ext.curriculum.config import HandoffConfig
from sb3_ext.curriculum.handoff import deterministic_actions, hand_off, recorded_observations
from sb3_ext.data.reader import load_chunks
from sb3_ext.delayed_td3 import DelayedTD3
from handoff_teachers import Damper, record_teacher

th.set_num_threads(1)


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    return record_teacher(Damper, "Pendulum-v1", tmp_path_factory.mktemp("demonstrations") / "pendulum")


def student(**overrides) -> DelayedTD3:
    settings = {"policy_kwargs": {"net_arch": [32, 32]}, "batch_size": 16, "seed": 0, **overrides}
    return DelayedTD3("MlpPolicy", "Pendulum-v1", **settings)


def test_the_cloning_loss_by_hand():
    """An actor whose last layer is a bias only outputs tanh(bias) everywhere; the term is then the
    mean of (tanh(bias) - a)^2 over the drawn rows."""
    model = student()
    last = model.actor.mu[-2]  # Linear before the Tanh
    with th.no_grad():
        last.weight.zero_()
        last.bias.fill_(0.2)
    observations = np.zeros((3, 3), dtype=np.float32)
    actions = np.array([0.5, -0.5, 0.0], dtype=np.float32)
    demonstrations = DemonstrationCloning(observations, actions)
    np.random.seed(7)
    rows = np.random.randint(0, 3, size=8)
    np.random.seed(7)
    loss = demonstrations.loss(model, 8).item()
    assert loss == pytest.approx(float(np.mean((np.tanh(0.2) - actions[rows]) ** 2)), rel=1e-5)


def test_mismatched_or_negative_fading_demonstrations_are_refused():
    with pytest.raises(ValueError, match="3 observations and 2 actions"):
        DemonstrationCloning(np.zeros((3, 3), dtype=np.float32), np.zeros((2, 1), dtype=np.float32))
    with pytest.raises(ValueError, match="fade_updates=-1"):
        DemonstrationCloning(np.zeros((3, 3), dtype=np.float32), np.zeros((3, 1), dtype=np.float32), fade_updates=-1)


def test_the_weight_fades_linearly_to_zero():
    demonstrations = DemonstrationCloning(np.zeros((2, 3), dtype=np.float32), np.zeros((2, 1)), weight=0.4,
                                          fade_updates=10)
    weights = []
    for updates in (0, 5, 10, 20):
        demonstrations.updates = updates
        weights.append(demonstrations.current_weight())
    assert weights == pytest.approx([0.4, 0.2, 0.0, 0.0])
    demonstrations.fade_updates = 0
    assert demonstrations.current_weight() == 0.4  # no fading: kept


def test_the_actor_gradient_is_td3_bc(recorded):
    """The gradient the actor's optimizer steps on is that of -Q1(s, mu(s)) / mean|Q1| + w * BC,
    recomputed from the batch the actor saw, after the critic's own update of that step."""
    _, directory = recorded
    model = student(policy_delay=1)
    load_chunks(model.replay_buffer, directory)
    observations = recorded_observations(directory)
    # Demonstrated action: a function of the state, so that the drawn rows can be read back.
    model.demonstrations = DemonstrationCloning(observations, observations[:, :1], weight=0.7)
    model.set_logger(configure(None, []))
    inputs: list[th.Tensor] = []
    model.actor.register_forward_hook(lambda _m, args, _o: inputs.append(args[0].detach().clone()))
    seen: dict[str, list[th.Tensor]] = {}

    def capture(*_):  # registered after the model's own pre-step hook, so it sees the final gradient
        replayed, demonstrated = inputs[-2], inputs[-1]
        params = list(model.actor.parameters())
        q1 = model.critic.q1_forward(replayed, model.actor(replayed))
        bc = th.nn.functional.mse_loss(model.actor(demonstrated), demonstrated[:, :1])
        expected = th.autograd.grad(-q1.mean() / q1.detach().abs().mean() + 0.7 * bc, params)
        seen["expected"], seen["actual"] = list(expected), [p.grad.clone() for p in params]

    model.actor.optimizer.register_step_pre_hook(capture)
    model.train(gradient_steps=1, batch_size=16)
    for expected, actual in zip(seen["expected"], seen["actual"], strict=True):
        th.testing.assert_close(actual, expected, rtol=1e-4, atol=1e-6)
    assert model.logger.name_to_value["train/bc_weight"] == 0.7
    assert model.demonstrations.updates == 1


def train_rounds(model: DelayedTD3, rounds: int, steps: int) -> list[float | None]:
    """``model.train`` for ``rounds`` x ``steps`` gradient steps; the logged cloning loss of each round."""
    model.set_logger(configure(None, []))
    losses = []
    for _ in range(rounds):
        model.train(gradient_steps=steps, batch_size=model.batch_size)
        losses.append(model.logger.name_to_value.get("train/bc_loss"))
    return losses


def test_the_term_pulls_the_actor_to_the_demonstrated_actions_while_it_trains(recorded):
    """The same TD3 training on the same buffer, with and without the term: with it, the actor's
    action on the demonstrated states approaches the demonstrated one and the term falls."""
    _, directory = recorded
    observations = recorded_observations(directory)
    # A constant torque of 0.6 (scaled): nothing the damper's transitions would teach the critic.
    demonstrated = np.full((len(observations), 1), 0.6, dtype=np.float32)
    errors = {}
    for with_term in (False, True):
        model = student(learning_rate=1e-3)
        load_chunks(model.replay_buffer, directory)
        if with_term:
            model.demonstrations = DemonstrationCloning(observations, demonstrated, weight=1.0)
        losses = train_rounds(model, rounds=5, steps=100)
        with th.no_grad():
            actions = model.actor(th.as_tensor(observations)).numpy()
        errors[with_term] = float(np.mean((actions - demonstrated) ** 2))
        if with_term:
            assert losses[-1] < 0.5 * losses[0]
        else:
            assert losses == [None] * 5
    assert errors[True] < 0.05
    assert errors[True] < 0.25 * errors[False]


def test_hand_off_gives_a_delayed_td3_the_term_and_it_survives_save_and_load(recorded, tmp_path):
    teacher, directory = recorded
    model = student()
    settings = HandoffConfig(distil_epochs=1, critic_warmup_steps=50, critic_warmup_rounds=1,
                             training_bc_weight=0.4, training_bc_fade_updates=300)
    report = hand_off(model, teacher, directory, settings, seed=0)
    assert report.training_bc_weight == 0.4 and report.to_dict()["training_bc_weight"] == 0.4
    observations = recorded_observations(directory)
    demonstrations = model.demonstrations
    assert demonstrations is not None and (demonstrations.weight, demonstrations.fade_updates) == (0.4, 300)
    np.testing.assert_array_equal(demonstrations.observations, observations)
    np.testing.assert_allclose(demonstrations.actions, deterministic_actions(teacher, observations) / 2.0,
                               rtol=1e-5, atol=1e-6)

    model.learn(200)  # 100 gradient steps, 50 actor updates
    assert demonstrations.updates == 50
    model.save(tmp_path / "student.zip")
    loaded = DelayedTD3.load(tmp_path / "student.zip")
    assert loaded.demonstrations is not None and loaded.demonstrations.updates == 50
    assert loaded.demonstrations.current_weight() == pytest.approx(0.4 * (1 - 50 / 300))
    np.testing.assert_array_equal(loaded.demonstrations.actions, demonstrations.actions)

    fresh = student()
    assert fresh.demonstrations is None  # a model without a hand-over trains as before
    off = hand_off(fresh, teacher, directory, HandoffConfig(distil_epochs=1, critic_warmup_steps=0))
    assert fresh.demonstrations is None and off.training_bc_weight is None  # off unless asked for


def test_an_actor_critic_without_the_term_is_told_so(recorded, caplog):
    teacher, directory = recorded
    model = TD3("MlpPolicy", "Pendulum-v1", policy_kwargs={"net_arch": [32, 32]}, seed=1)
    with caplog.at_level(logging.WARNING, logger="sb3_ext"):
        report = hand_off(model, teacher, directory, HandoffConfig(distil_epochs=1, critic_warmup_steps=0,
                                                                   training_bc_weight=0.4))
    assert report.training_bc_weight is None and not hasattr(model, "demonstrations")
    assert "TD3 has no behaviour-cloning term in its own training" in caplog.text
