"""Hand-over between algorithms: recorded chunks seed the replay buffer, distillation copies the behaviour."""

from __future__ import annotations

import numpy as np
import pytest
import torch as th
from sb3_contrib import QRDQN
from stable_baselines3 import A2C, DQN, PPO, SAC, TD3
from stable_baselines3.common.env_util import make_vec_env

from sb3_ext.curriculum.handoff import (
    distil,
    hand_off,
    record_handoff,
    recorded_observations,
)
from sb3_ext.data import read_manifest
from sb3_ext.delayed_td3 import DelayedTD3
from sb3_ext.quantile_dqn import QuantileDQN
from sb3_ext.twin_dqn import TwinDQN

th.set_num_threads(1)
SMALL = {"net_arch": [32, 32]}


def agreement(student, teacher, observations, continuous: bool) -> float:
    mine, theirs = student.predict(observations, deterministic=True)[0], teacher.predict(observations, deterministic=True)[0]
    if not continuous:
        return float(np.mean(mine == theirs))
    low, high = student.action_space.low, student.action_space.high
    scale = lambda a: 2 * (a - low) / (high - low) - 1  # noqa: E731
    return float(np.mean(np.abs(scale(mine) - scale(theirs)).max(axis=1) < 0.1))


class ScriptedTeacher:
    """A teacher with SB3's ``predict``: a CartPole balancer, or a Pendulum torque from the angular velocity."""

    def __init__(self, env_id: str, action_space):
        self.env_id, self.action_space, self.num_timesteps = env_id, action_space, 0

    def predict(self, observations, state=None, episode_start=None, deterministic=True):
        if self.env_id == "CartPole-v1":
            return (observations[:, 2] + 0.5 * observations[:, 3] > 0).astype(np.int64), None
        return (2.0 * np.tanh(observations[:, 2:3] - observations[:, 1:2])).astype(np.float32), None


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """A scripted teacher per env and a dataset of its transitions."""
    out = {}
    for env_id in ("CartPole-v1", "Pendulum-v1"):
        env = make_vec_env(env_id, n_envs=2, seed=0)
        teacher = ScriptedTeacher(env_id, env.action_space)
        directory = tmp_path_factory.mktemp("handoff") / env_id
        manifest = record_handoff(teacher, env, directory, 2000, env_id=env_id)
        out[env_id] = (teacher, directory, manifest)
    return out


def test_record_handoff_writes_a_dataset_with_manifest(recorded):
    _teacher, directory, manifest = recorded["Pendulum-v1"]
    assert read_manifest(directory)["n_transitions"] == manifest["n_transitions"] == 2000
    assert manifest["provenance"]["handoff_from"] == "ScriptedTeacher"
    assert recorded_observations(directory).shape == (2000, 3)


@pytest.mark.parametrize("algorithm, kwargs", [
    (DQN, {}), (TwinDQN, {}), (QRDQN, {}), (QuantileDQN, {}), (A2C, {}),
])
def test_distillation_makes_a_discrete_student_act_as_the_teacher(recorded, algorithm, kwargs):
    teacher, directory, _ = recorded["CartPole-v1"]
    student = algorithm("MlpPolicy", "CartPole-v1", policy_kwargs=dict(SMALL), seed=1, **kwargs)
    observations = recorded_observations(directory)
    before = agreement(student, teacher, observations, continuous=False)
    report = distil(student, teacher, observations, epochs=8, seed=0)
    assert report.agreement == pytest.approx(agreement(student, teacher, observations, continuous=False))
    # A balancer keeps the state on its own decision boundary: a quarter of the states sit right at it.
    assert report.agreement > 0.7 and report.agreement > before + 0.1
    assert report.distillation_losses[-1] < report.distillation_losses[0]


@pytest.mark.parametrize("algorithm", [TD3, SAC, DelayedTD3, PPO])
def test_distillation_makes_a_continuous_student_act_as_the_teacher(recorded, algorithm):
    teacher, directory, _ = recorded["Pendulum-v1"]
    student = algorithm("MlpPolicy", "Pendulum-v1", policy_kwargs=dict(SMALL), seed=1)
    observations = recorded_observations(directory)
    before = agreement(student, teacher, observations, continuous=True)
    report = distil(student, teacher, observations, epochs=15, seed=0)
    assert report.agreement == pytest.approx(agreement(student, teacher, observations, continuous=True))
    assert report.agreement > 0.8 and report.agreement > before + 0.3


def test_hand_off_seeds_the_buffer_and_syncs_the_target_networks(recorded):
    teacher, directory, manifest = recorded["Pendulum-v1"]
    student = TD3("MlpPolicy", "Pendulum-v1", policy_kwargs=dict(SMALL), seed=1)
    report = hand_off(student, teacher, directory, epochs=2, seed=0)
    assert report.transitions_seeded == manifest["n_transitions"] == student.replay_buffer.size()
    np.testing.assert_allclose(student.replay_buffer.observations[:2000, 0], recorded_observations(directory))
    for online, target in zip(student.actor.parameters(), student.actor_target.parameters(), strict=False):
        assert th.equal(online, target)
    dqn = TwinDQN("MlpPolicy", "CartPole-v1", policy_kwargs=dict(SMALL), seed=1)
    hand_off(dqn, recorded["CartPole-v1"][0], recorded["CartPole-v1"][1], epochs=1)
    for online, target in zip(dqn.q_net.parameters(), dqn.q_net_target.parameters(), strict=False):
        assert th.equal(online, target)


def test_mismatched_spaces_are_refused(recorded):
    teacher, directory, _ = recorded["CartPole-v1"]
    student = TD3("MlpPolicy", "Pendulum-v1", policy_kwargs=dict(SMALL))
    with pytest.raises(ValueError, match="observation space"):
        hand_off(student, teacher, directory)
