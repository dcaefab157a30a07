"""What an SB3 algorithm that trains on agent slots needs so that ``load`` and ``set_env`` take any multi-agent env."""

from __future__ import annotations

import io
import pathlib
from typing import Any

import torch as th
from gymnasium import spaces
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.save_util import load_from_zip_file
from stable_baselines3.common.type_aliases import GymEnv
from stable_baselines3.common.vec_env import VecEnv

from sb3_ext.multiagent.vec import to_agent_slots


def agent_slots_matching(env: Any, observation_space: spaces.Space | None) -> VecEnv | GymEnv:
    """``env`` as agent slots whose observation space is ``observation_space``.

    A model trained on joint observations (every slot sees its whole copy, as ``NCAPolicy``
    needs) must get them back; the space saved with the model says which view it was.
    """
    slots = to_agent_slots(env)
    if observation_space is not None and slots.observation_space != observation_space:
        joint = to_agent_slots(env, joint_observation=True)
        if joint.observation_space == observation_space:
            return joint
    return slots


class AgentSlotsAlgorithm(BaseAlgorithm):
    """Lets ``load(env=...)`` and ``set_env`` take the multi-agent envs the constructor takes.

    SB3 checks a new env's spaces against the model's before the algorithm can turn a PettingZoo
    env, a joint env or a VecEnv of joint envs into agent slots; these overrides convert first.
    """

    def set_env(self, env: GymEnv, force_reset: bool = True) -> None:
        super().set_env(agent_slots_matching(env, self.observation_space), force_reset)

    @classmethod
    def load(
        cls,
        path: str | pathlib.Path | io.BufferedIOBase,
        env: GymEnv | None = None,
        device: th.device | str = "auto",
        custom_objects: dict[str, Any] | None = None,
        print_system_info: bool = False,
        force_reset: bool = True,
        **kwargs: Any,
    ) -> Any:
        if env is not None:
            # Only the saved spaces are needed here; SB3's load reads the file again in full.
            data, _, _ = load_from_zip_file(path, device="cpu", custom_objects=custom_objects)
            env = agent_slots_matching(env, (data or {}).get("observation_space"))
            if isinstance(path, io.BufferedIOBase):
                path.seek(0)
        return super().load(
            path,
            env=env,
            device=device,
            custom_objects=custom_objects,
            print_system_info=print_system_info,
            force_reset=force_reset,
            **kwargs,
        )
