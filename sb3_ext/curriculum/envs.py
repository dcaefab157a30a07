"""Vectorised training and evaluation environments for a curriculum stage."""

from __future__ import annotations

import functools
import signal
from pathlib import Path

import gymnasium as gym
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecEnv

from sb3_ext.curriculum.config import ConfigError, StageConfig
from sb3_ext.curriculum.presets import override
from sb3_ext.multiagent.vec import AgentSlotsVecEnv


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


def make_training_env(
    config: StageConfig, n_envs: int, seed: int, env_id: str | None = None, subprocesses: bool = True
) -> VecEnv:
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


def evaluation_config(config: StageConfig, lattice: list[int] | None, temperature: float | None) -> StageConfig:
    """``config`` on another lattice and/or at another temperature (``--eval-only``).

    On another lattice, the events per RL step scale with the area, so that an episode covers the
    same physical time (the same film thickness) as on the stage's own lattice.
    """
    if lattice is not None:
        nx, ny, _ = config.environment.lattice_size
        scaled = max(1, round(config.environment.n_proposals * lattice[0] * lattice[1] / (nx * ny)))
        config = override(config, {"environment": {"lattice_size": list(lattice), "n_proposals": scaled}}, "--lattice")
    if temperature is not None:
        config = override(config, {"environment": {"temperature": temperature}}, "--temperature")
    return config


def observation_shape(config: StageConfig) -> tuple[int, ...]:
    """The observation one policy input row has on this stage: one agent's view in
    ``per_column`` mode, the joint view of the ``n_swarm`` agents in ``fixed`` mode."""
    from sb3_ext.envs.lattice.agent_swarm import agent_observation_size
    from sb3_ext.envs.lattice.fixed_agents import observation_size

    env = config.environment
    if env.per_column:
        return (agent_observation_size(env.patch_radius),)
    return (observation_size(env.agents.n_swarm, env.patch_radius),)


def config_for_checkpoint(checkpoint: str | Path, config: StageConfig, source: str) -> StageConfig:
    """The stage's config in the agent mode whose input the saved policy reads.

    A policy trained on the stage's own mode is evaluated as configured; one trained on the other
    mode the stage file describes (e.g. a four-agent ``fixed`` checkpoint on a ``per_column``
    stage) is evaluated in that mode. Anything else is refused in one line naming the checkpoint
    and the stage-file keys that set the view.
    """
    from stable_baselines3.common.save_util import load_from_zip_file

    try:
        data, _, _ = load_from_zip_file(checkpoint, load_data=True, device="cpu", print_system_info=False)
    except Exception as error:  # a damaged archive: one line, as for every other bad input
        raise ConfigError(
            f"--checkpoint {checkpoint}: cannot read the saved model ({type(error).__name__}: {error})"
        ) from None
    space = (data or {}).get("observation_space")
    shape = None if space is None else tuple(space.shape)
    other_mode = "fixed" if config.environment.per_column else "per_column"
    for candidate in (config, override(config, {"environment": {"agents": {"mode": other_mode}}}, source)):
        if shape == observation_shape(candidate):
            return candidate
    env = config.environment
    raise ConfigError(
        f"{checkpoint}: observation_space: the policy reads {shape} values per input, but {source} "
        f"(environment.patch_radius={env.patch_radius}, environment.agents.n_swarm={env.agents.n_swarm}) gives "
        f"{observation_shape(config)} per agent in mode {env.agents.mode!r} and "
        f"{observation_shape(override(config, {'environment': {'agents': {'mode': other_mode}}}, source))} "
        f"in mode {other_mode!r}"
    )
