"""Vectorised training and evaluation environments for a curriculum stage."""

from __future__ import annotations

import functools
import signal

import gymnasium as gym
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecEnv

from sb3_ext.curriculum.config import StageConfig

ENV_ID = "LatticeGrowth-v0"


def create_env(env_id: str, ignore_signals: bool = False, **env_kwargs) -> gym.Env:
    """``gymnasium.make(env_id, **env_kwargs)``, importable by SubprocVecEnv workers.

    :param ignore_signals: set in worker processes: a Ctrl-C reaches the whole process group, and
        the workers must keep serving the main process while it saves the model and closes them
        (they exit when their pipe closes).
    """
    if ignore_signals:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    import sb3_ext  # noqa: F401 - registers the environment ids in a fresh worker process

    return gym.make(env_id, **env_kwargs)


def make_training_env(config: StageConfig, n_envs: int, seed: int, env_id: str = ENV_ID, subprocesses: bool = True) -> VecEnv:
    """``n_envs`` Monitor-wrapped copies of the stage's environment.

    :param subprocesses: SubprocVecEnv when ``n_envs > 1`` (one process per env); otherwise
        DummyVecEnv (all envs in this process, stepped in turn). A LatticeGrowth step costs tens
        of microseconds, less than a pipe round trip, so DummyVecEnv is usually faster.
    """
    vec_env_cls = SubprocVecEnv if subprocesses and n_envs > 1 else DummyVecEnv
    return make_vec_env(
        functools.partial(create_env, env_id, ignore_signals=vec_env_cls is SubprocVecEnv),
        n_envs=n_envs,
        seed=seed,
        env_kwargs=config.environment.env_kwargs(),
        vec_env_cls=vec_env_cls,
    )


def make_eval_env(config: StageConfig, seed: int, env_id: str = ENV_ID) -> VecEnv:
    """One Monitor-wrapped copy in the main process, for deterministic evaluation episodes."""
    return make_vec_env(
        functools.partial(create_env, env_id), n_envs=1, seed=seed, env_kwargs=config.environment.env_kwargs()
    )
