"""Hand-over between algorithms: recorded chunks seed the replay buffer, distillation copies the behaviour."""

from __future__ import annotations

import numpy as np
import pytest
import torch as th
from sb3_contrib import QRDQN
from stable_baselines3 import A2C, DQN, PPO, SAC, TD3
from stable_baselines3.common.env_util import make_vec_env

from sb3_ext.curriculum.config import HandoffConfig
from sb3_ext.curriculum.critic_warmup import warm_up_critic
from sb3_ext.curriculum.handoff import (
    deterministic_actions,
    distil,
    hand_off,
    record_handoff,
    recorded_observations,
)
from sb3_ext.data import iter_chunks, read_manifest
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


def test_record_handoff_with_a_number_of_envs_that_does_not_divide_the_chunk_size(tmp_path):
    env = make_vec_env("CartPole-v1", n_envs=3, seed=0)  # 3 does not divide ChunkWriter's default 50 000
    manifest = record_handoff(ScriptedTeacher("CartPole-v1", env.action_space), env, tmp_path / "three", 100)
    assert manifest["n_transitions"] == 99 and manifest["n_envs"] == 3


def recorded_against_teacher(env_id: str, directory, epsilon: float, seed: int = 0):
    """Record 2000 transitions of the scripted teacher with ``epsilon``; its own actions on the recorded states too."""
    env = make_vec_env(env_id, n_envs=2, seed=0)
    teacher = ScriptedTeacher(env_id, env.action_space)
    manifest = record_handoff(teacher, env, directory, 2000, env_id=env_id, epsilon=epsilon, seed=seed)
    chunks = list(iter_chunks(directory))
    observations = np.concatenate([chunk["observations"] for chunk in chunks])
    recorded = np.concatenate([chunk["actions"] for chunk in chunks])
    return manifest, recorded, teacher.predict(observations)[0].reshape(recorded.shape)


def test_record_handoff_with_epsilon_replaces_that_share_of_actions_by_uniform_ones(tmp_path):
    manifest, recorded, teacher = recorded_against_teacher("CartPole-v1", tmp_path / "none", epsilon=0.0)
    assert manifest["provenance"]["epsilon"] == 0.0 and np.array_equal(recorded, teacher)
    # Half the steps draw one of the two actions uniformly: a quarter of the actions are not the teacher's.
    manifest, recorded, teacher = recorded_against_teacher("CartPole-v1", tmp_path / "half", epsilon=0.5)
    assert manifest["provenance"]["epsilon"] == 0.5 and manifest["provenance"]["epsilon_seed"] == 0
    assert 0.22 < np.mean(recorded != teacher) < 0.28
    # Box actions: the replaced half is spread over the whole range, not near the teacher's torque.
    _, recorded, teacher = recorded_against_teacher("Pendulum-v1", tmp_path / "box", epsilon=0.5)
    replaced = np.abs(recorded - teacher).reshape(-1) > 1e-6
    assert 0.45 < replaced.mean() < 0.55
    assert recorded.min() >= -2.0 and recorded.max() <= 2.0 and recorded[replaced].std() > 1.0
    # The draws follow the seed (the env's seed is the same in every recording here).
    _, again, _ = recorded_against_teacher("Pendulum-v1", tmp_path / "again", epsilon=0.5)
    assert np.array_equal(again, recorded)
    _, other, _ = recorded_against_teacher("Pendulum-v1", tmp_path / "other", epsilon=0.5, seed=1)
    assert not np.array_equal(other, recorded)
    for bad in (1.5, -0.1):
        with pytest.raises(ValueError, match=rf"^handoff recording: epsilon={bad}; expected a probability in \[0, 1\]$"):
            recorded_against_teacher("CartPole-v1", tmp_path / "bad", epsilon=bad)


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
    report = hand_off(student, teacher, directory, HandoffConfig(distil_epochs=2, critic_warmup_steps=0), seed=0)
    assert report.transitions_seeded == manifest["n_transitions"] == student.replay_buffer.size()
    np.testing.assert_allclose(student.replay_buffer.observations[:2000, 0], recorded_observations(directory))
    for online, target in zip(student.actor.parameters(), student.actor_target.parameters(), strict=False):
        assert th.equal(online, target)
    dqn = TwinDQN("MlpPolicy", "CartPole-v1", policy_kwargs=dict(SMALL), seed=1)
    distil_only = HandoffConfig(distil_epochs=1, critic_warmup_steps=0)
    hand_off(dqn, recorded["CartPole-v1"][0], recorded["CartPole-v1"][1], distil_only)
    for online, target in zip(dqn.q_net.parameters(), dqn.q_net_target.parameters(), strict=False):
        assert th.equal(online, target)


def test_mismatched_spaces_are_refused(recorded):
    teacher, directory, _ = recorded["CartPole-v1"]
    student = TD3("MlpPolicy", "Pendulum-v1", policy_kwargs=dict(SMALL))
    with pytest.raises(ValueError, match="observation space"):
        hand_off(student, teacher, directory)


def td_error_by_hand(student, batch) -> float:
    """Mean squared one-step TD error of every critic head, written out independently of the module:
    TD3's target min_i Q'_i(s', mu'(s')) (no target noise), TwinDQN's min over heads of the target
    heads at the online heads' greedy action."""
    with th.no_grad():
        terminal = batch.dones.reshape(-1)
        if isinstance(student, TD3):
            current = th.cat(student.critic(batch.observations, batch.actions), dim=1)
            next_actions = student.actor_target(batch.next_observations)
            next_q = th.cat(student.critic_target(batch.next_observations, next_actions), dim=1)
            next_values = next_q.min(dim=1).values
        else:
            heads = student.q_net.forward_critics(batch.observations)  # (batch, heads, actions)
            current = heads.gather(2, batch.actions.long().reshape(-1, 1, 1).expand(-1, heads.shape[1], 1)).squeeze(2)
            greedy = student.q_net(batch.next_observations).argmax(dim=1)
            target_heads = student.q_net_target.forward_critics(batch.next_observations)
            next_values = target_heads.gather(2, greedy.reshape(-1, 1, 1).expand(-1, target_heads.shape[1], 1)).squeeze(2)
            next_values = next_values.min(dim=1).values
        target = batch.rewards.reshape(-1) + student.gamma * (1 - terminal) * next_values
        return float(((current - target[:, None]) ** 2).mean())


@pytest.mark.parametrize("env_id, algorithm", [("Pendulum-v1", TD3), ("CartPole-v1", TwinDQN)])
def test_critic_warmup_learns_the_recorded_values_without_moving_the_policy(recorded, env_id, algorithm):
    teacher, directory, _ = recorded[env_id]
    student = algorithm("MlpPolicy", env_id, policy_kwargs=dict(SMALL), seed=1, batch_size=256)
    hand_off(student, teacher, directory, HandoffConfig(distil_epochs=8, critic_warmup_steps=0), seed=0)
    observations = recorded_observations(directory)
    teacher_actions = deterministic_actions(teacher, observations)
    actions_before = deterministic_actions(student, observations)
    actor_before = {k: v.clone() for k, v in student.actor.state_dict().items()} if algorithm is TD3 else None
    th.manual_seed(0)
    probe = student.replay_buffer.sample(1024)
    td_before = td_error_by_hand(student, probe)

    report = warm_up_critic(student, directory, teacher_actions, steps=2500, rounds=5, seed=0)

    assert report.gradient_steps >= 2000
    # fitted to the recorded returns (a fresh critic is far off: returns are in the hundreds)...
    assert report.return_error_after < 0.02 * report.return_error_before
    # ...and so consistent with its own one-step targets, measured by hand on the seeded buffer
    td_after = td_error_by_hand(student, probe)
    assert td_after < 0.7 * td_before
    actions_after = deterministic_actions(student, observations)
    if algorithm is TD3:
        # the actor did not move at all: not a parameter, not an action
        for name, value in student.actor.state_dict().items():
            assert th.equal(value, actor_before[name]), name
        np.testing.assert_array_equal(actions_after, actions_before)
    else:
        # the Q-network is the policy: the large-margin term keeps it acting as the teacher (the greedy
        # actions that change are mostly ones distillation had left different from the teacher's)
        assert np.mean(actions_after == teacher_actions) >= np.mean(actions_before == teacher_actions) - 0.02


def test_hand_off_runs_the_critic_warmup_and_reports_it(recorded):
    teacher, directory, _ = recorded["Pendulum-v1"]
    student = TD3("MlpPolicy", "Pendulum-v1", policy_kwargs=dict(SMALL), seed=1)
    settings = HandoffConfig(distil_epochs=3, critic_warmup_steps=300, critic_warmup_rounds=2)
    report = hand_off(student, teacher, directory, settings)
    warmup = report.to_dict()["critic_warmup"]
    assert warmup["rounds"] == 2 and len(warmup["losses"]) == 2 and warmup["gradient_steps"] >= 300
    assert warmup["return_error_after"] < warmup["return_error_before"]
    assert report.agreement_after_warmup == report.agreement  # the actor is held still
    on_policy = PPO("MlpPolicy", "Pendulum-v1", policy_kwargs=dict(SMALL), seed=1)
    assert hand_off(on_policy, teacher, directory, HandoffConfig(distil_epochs=1)).critic_warmup is None
