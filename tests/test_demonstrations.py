"""DQfD's large-margin term during a Q-learner's own training, and the hand-over that installs it."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch as th
from stable_baselines3 import DQN
from stable_baselines3.common.logger import configure

from sb3_ext.common.demonstrations import DemonstrationMargin, large_margin_loss
from sb3_ext.curriculum.config import HandoffConfig
from sb3_ext.curriculum.handoff import deterministic_actions, hand_off, recorded_observations
from sb3_ext.data.reader import load_chunks
from sb3_ext.quantile_dqn import QuantileDQN
from sb3_ext.twin_dqn import TwinDQN
from handoff_teachers import Balancer, record_teacher

th.set_num_threads(1)
SMALL = {"net_arch": [32, 32]}


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    return record_teacher(Balancer, "CartPole-v1", tmp_path_factory.mktemp("demonstrations") / "cartpole")


def test_large_margin_loss_by_hand():
    values = th.tensor([[1.0, 2.0], [3.0, 0.5], [0.0, 0.5]])
    actions = th.tensor([0, 0, 1])
    # row 0: max(1, 2 + 0.8) - 1 = 1.8; row 1: max(3, 0.5 + 0.8) - 3 = 0; row 2: max(0 + 0.8, 0.5) - 0.5 = 0.3
    assert float(large_margin_loss(values, actions)) == pytest.approx((1.8 + 0.0 + 0.3) / 3)
    assert float(large_margin_loss(values, actions, margin=0.0)) == pytest.approx((1.0 + 0.0 + 0.0) / 3)


def test_mismatched_demonstrations_are_refused():
    with pytest.raises(ValueError, match="3 observations and 2 actions"):
        DemonstrationMargin(np.zeros((3, 4), dtype=np.float32), np.zeros(2, dtype=np.int64))


def train_rounds(model, rounds: int, steps: int) -> list[float]:
    """``model.train`` for ``rounds`` x ``steps`` gradient steps; the logged margin loss of each round."""
    model.set_logger(configure(None, []))
    margins = []
    for _ in range(rounds):
        model.train(gradient_steps=steps, batch_size=model.batch_size)
        margins.append(model.logger.name_to_value.get("train/margin_loss"))
    return margins


@pytest.mark.parametrize("algorithm", [TwinDQN, QuantileDQN])
def test_the_margin_keeps_the_demonstrated_action_greedy_while_the_model_trains(recorded, algorithm):
    """The same TD training on the same buffer, with and without the term: with it, the greedy action
    becomes the demonstrated one on the demonstrated states and the term falls; without it, it does not."""
    teacher, directory = recorded
    observations = recorded_observations(directory)
    # The teacher's choice reversed: a ranking TD learning on the teacher's own transitions never
    # suggests, so only the margin term can bring it about.
    reversed_actions = 1 - deterministic_actions(teacher, observations)
    agreements = {}
    for with_margin in (False, True):
        model = algorithm("MlpPolicy", "CartPole-v1", policy_kwargs=dict(SMALL), seed=3, learning_rate=1e-3)
        load_chunks(model.replay_buffer, directory)
        if with_margin:
            model.demonstrations = DemonstrationMargin(observations, reversed_actions, weight=1.0)
        margins = train_rounds(model, rounds=6, steps=150)
        agreements[with_margin] = float(np.mean(deterministic_actions(model, observations) == reversed_actions))
        if with_margin:
            assert margins[-1] < 0.7 * margins[0]
            assert model.logger.name_to_value["train/margin_weight"] == 1.0
        else:
            assert margins == [None] * 6
    # Not all the way: a small network cannot put a 0.8 margin on both sides of the balancer's
    # boundary, on which a quarter of the recorded states sit.
    assert agreements[True] > 0.7
    assert agreements[True] > agreements[False] + 0.2


def test_hand_off_gives_a_twin_dqn_the_margin_and_it_survives_save_and_load(recorded, tmp_path):
    teacher, directory = recorded
    student = TwinDQN("MlpPolicy", "CartPole-v1", policy_kwargs=dict(SMALL), seed=1)
    settings = HandoffConfig(distil_epochs=1, critic_warmup_steps=100, critic_warmup_rounds=1, training_margin_weight=0.5)
    report = hand_off(student, teacher, directory, settings, seed=0)
    assert report.training_margin_weight == 0.5 and report.to_dict()["training_margin_weight"] == 0.5
    observations = recorded_observations(directory)
    demonstrations = student.demonstrations
    assert demonstrations is not None and demonstrations.weight == 0.5
    np.testing.assert_array_equal(demonstrations.observations, observations)
    np.testing.assert_array_equal(demonstrations.actions, deterministic_actions(teacher, observations))

    student.save(tmp_path / "student.zip")
    loaded = TwinDQN.load(tmp_path / "student.zip")
    assert loaded.demonstrations is not None and loaded.demonstrations.weight == 0.5
    np.testing.assert_array_equal(loaded.demonstrations.actions, demonstrations.actions)

    fresh = TwinDQN("MlpPolicy", "CartPole-v1", policy_kwargs=dict(SMALL), seed=1)
    assert fresh.demonstrations is None  # a model without a hand-over trains as before
    off = hand_off(fresh, teacher, directory, HandoffConfig(distil_epochs=1, critic_warmup_steps=0))
    assert fresh.demonstrations is None and off.training_margin_weight is None  # off unless asked for


def test_a_q_learner_without_the_term_is_told_so(recorded, caplog):
    teacher, directory = recorded
    student = DQN("MlpPolicy", "CartPole-v1", policy_kwargs=dict(SMALL), seed=1)
    with caplog.at_level(logging.WARNING, logger="sb3_ext"):
        report = hand_off(student, teacher, directory, HandoffConfig(distil_epochs=1, critic_warmup_steps=0,
                                                                     training_margin_weight=1))
    assert report.training_margin_weight is None and not hasattr(student, "demonstrations")
    assert "DQN has no large-margin term in its own training" in caplog.text
