"""Gymnasium entry points of ``LatticeGrowth-v0`` and ``LatticeSwarm-v0``: the env, optionally with
the settings of a curriculum stage file.

``gymnasium.make("LatticeGrowth-v0", stage=1)`` builds the lattice that stage 1's file describes
(its ``environment:`` section: size, temperature, rates, episode length, patch, agents, reward),
with the file's agents in ``fixed`` mode, the four-agent setup this env id runs;
``LatticeSwarm-v0`` takes the same section with agents on the columns (``per_column``). Any
other keyword argument overrides that one setting (``stage=1, temperature=650.0``). Without
``stage`` the entry point is the env's constructor.

This is how the zoo's ``LatticeGrowth-v0`` entries (``sb3_ext/hyperparams/ppo.yml``,
``reinforce.yml``) use the lattice of the stage file instead of a copy of it: ``sb3-ext-train``
and plain ``python -m rl_zoo3.train`` both hand an entry's ``env_kwargs`` to ``gymnasium.make``
unchanged, so ``env_kwargs: {stage: 1}`` works in both. The file is read when the env is made.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import gymnasium as gym

from sb3_ext.curriculum.config import load_stage_config, stage_file
from sb3_ext.envs.lattice.env import LatticeGrowthEnv
from sb3_ext.envs.lattice.swarm_env import LatticeSwarmEnv


def stage_env_kwargs(stage: int | str | os.PathLike[str], agents_mode: str) -> dict[str, Any]:
    """The constructor arguments that stage file ``stage`` gives its env, with its agents in
    ``agents_mode`` (``"fixed"``: ``LatticeGrowth-v0``; ``"per_column"``: ``LatticeSwarm-v0``).

    :param stage: a stage number (the file shipped with the package) or the path of a stage file.
    :raises ConfigError: one line naming the file and key at fault.
    """
    environment = load_stage_config(stage_file(stage)).environment
    agents = dataclasses.replace(environment.agents, mode=agents_mode)
    return dataclasses.replace(environment, agents=agents).env_kwargs()


class LatticeEntryPoint:
    """Makes ``env_class``, on top of a stage file's environment settings when ``stage`` is given.

    A callable object rather than a function because ``gymnasium.make`` reads the render modes
    from the entry point's ``metadata`` (to wrap ``render_mode="human"``), as it does from a class.

    :param env_class: the environment class.
    :param agents_mode: the stage files' ``agents.mode`` this env id runs.
    """

    def __init__(self, env_class: type[gym.Env], agents_mode: str) -> None:
        self.env_class = env_class
        self.agents_mode = agents_mode
        self.metadata = env_class.metadata

    def __call__(self, stage: int | str | os.PathLike[str] | None = None, **kwargs: Any) -> gym.Env:
        """``env_class(**kwargs)``; with ``stage``, the stage file's settings where ``kwargs`` gives none."""
        if stage is not None:
            kwargs = {**stage_env_kwargs(stage, self.agents_mode), **kwargs}
        return self.env_class(**kwargs)


#: Entry point of ``LatticeGrowth-v0``.
lattice_growth = LatticeEntryPoint(LatticeGrowthEnv, "fixed")
#: Entry point of ``LatticeSwarm-v0``.
lattice_swarm = LatticeEntryPoint(LatticeSwarmEnv, "per_column")
