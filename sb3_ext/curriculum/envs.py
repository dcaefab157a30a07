"""Vectorised training and evaluation environments for a curriculum stage."""

from __future__ import annotations

import functools
import signal

import gymnasium as gym
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecEnv

from sb3_ext.curriculum.config import StageConfig
from sb3_ext.envs.swarm.vec import AgentSlotsVecEnv

#: The environment of ``agents.mode: fixed``; ``per_column`` stages use ``LatticeSwarm-v0``.
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


def make_training_env(config: StageConfig, n_envs: int, seed: int, env_id: str | None = None, subprocesses: bool = True) -> VecEnv:
    """``n_envs`` Monitor-wrapped copies of the stage's environment (``env_id`` overrides the
    stage's own); a ``per_column`` stage's copies are unfolded into one slot per agent.

    :param subprocesses: SubprocVecEnv when ``n_envs > 1`` (one process per env); otherwise
        DummyVecEnv (all envs in this process, stepped in turn). A LatticeGrowth step costs tens
        of microseconds, less than a pipe round trip, so DummyVecEnv is usually faster.
    """
    vec_env_cls = SubprocVecEnv if subprocesses and n_envs > 1 else DummyVecEnv
    env = make_vec_env(
        functools.partial(create_env, env_id or config.environment.env_id, ignore_signals=vec_env_cls is SubprocVecEnv),
        n_envs=n_envs,
        seed=seed,
        env_kwargs=config.environment.env_kwargs(),
        vec_env_cls=vec_env_cls,
    )
    return AgentSlotsVecEnv(env) if config.environment.per_column else env


def make_eval_env(config: StageConfig, seed: int, env_id: str | None = None) -> VecEnv:
    """One copy in the main process, for the periodic evaluations during training.

    A ``per_column`` copy is unfolded into its agent slots without a ``Monitor``: only the first
    slot would carry the Monitor's episode record, and ``evaluate_policy`` would then wait forever
    for the others to report theirs; without it, it counts episodes by ``done``, which every slot
    reports.
    """
    env_id = env_id or config.environment.env_id
    if config.environment.per_column:
        env = DummyVecEnv([functools.partial(create_env, env_id, **config.environment.env_kwargs())])
        env.seed(seed)
        return AgentSlotsVecEnv(env)
    return make_vec_env(functools.partial(create_env, env_id), n_envs=1, seed=seed, env_kwargs=config.environment.env_kwargs())
