"""Hand-rule teachers with SB3's ``predict`` and the recording of their transitions, for hand-over tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from stable_baselines3.common.env_util import make_vec_env

from sb3_ext.curriculum.handoff import record_handoff


class Balancer:
    """A CartPole teacher: push towards the side the pole falls to."""

    def __init__(self, action_space):
        self.action_space, self.num_timesteps = action_space, 0

    def predict(self, observations, state=None, episode_start=None, deterministic=True):
        return (observations[:, 2] + 0.5 * observations[:, 3] > 0).astype(np.int64), None


class Damper:
    """A Pendulum teacher: torque against the angular velocity."""

    def __init__(self, action_space):
        self.action_space, self.num_timesteps = action_space, 0

    def predict(self, observations, state=None, episode_start=None, deterministic=True):
        return np.clip(-observations[:, 2:3], -2.0, 2.0).astype(np.float32), None


def record_teacher(teacher_class, env_id: str, directory: Path, n_steps: int = 2000):
    """Record ``n_steps`` of a new ``teacher_class`` on two copies of ``env_id`` into ``directory``."""
    env = make_vec_env(env_id, n_envs=2, seed=0)
    teacher = teacher_class(env.action_space)
    record_handoff(teacher, env, directory, n_steps, env_id=env_id)
    return teacher, directory
