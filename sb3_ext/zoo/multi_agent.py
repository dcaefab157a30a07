"""Evaluating multi-agent models in the joint env rl-zoo3 builds (EvalCallback, Optuna, enjoy).

rl-zoo3 makes every env from its gymnasium id, so a multi-agent run (``--env Swarm2D-v0``) gets a
VecEnv of *joint* envs: one observation ``(n_agents, ...)`` and one summed reward per copy. Our
multi-agent algorithms unfold the training env into agent slots themselves
(:func:`sb3_ext.multiagent.vec.to_agent_slots`), but the evaluation loops (SB3's
``evaluate_policy``, rl-zoo3's enjoy) call ``model.predict`` on the env's observations and count
episodes per env. :class:`JointEpisodeView` serves both: agent-slot observations for the model,
rewards, dones and infos per copy for the loop.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper
from stable_baselines3.common.vec_env.base_vec_env import VecEnvObs, VecEnvStepReturn

from sb3_ext.multiagent.vec import AgentSlotsVecEnv, agent_slots_of
from sb3_ext.nca.policies import NCAPolicy


class JointEpisodeView(VecEnvWrapper):
    """A joint multi-agent VecEnv as an evaluation loop needs it.

    Observations come from :class:`AgentSlotsVecEnv` (one row per agent, ``n_copies * n_agents``
    rows, exactly as in training); rewards are summed over each copy's agents and dones and infos
    are per copy (the first slot's info carries the copy's Monitor ``episode`` record), so
    ``num_envs`` is the number of copies. Only for loops that hand observations straight to
    ``model.predict``: it is not an env to train on.
    """

    def __init__(self, venv: VecEnv, joint_observation: bool = False) -> None:
        self.slots = AgentSlotsVecEnv(venv, joint_observation=joint_observation)
        super().__init__(venv, self.slots.observation_space, self.slots.action_space)

    def reset(self) -> VecEnvObs:
        return self.slots.reset()

    def step_async(self, actions: np.ndarray) -> None:
        self.slots.step_async(actions)

    def step_wait(self) -> VecEnvStepReturn:
        observations, rewards, dones, infos = self.slots.step_wait()
        n_agents = self.slots.n_agents
        return observations, rewards.reshape(-1, n_agents).sum(axis=1), dones[::n_agents], infos[::n_agents]


def uses_joint_observations(policy: Any) -> bool:
    """Whether ``policy`` (a YAML policy name or class) acts on whole copies (NCA) rather than one agent."""
    return policy == "NCAPolicy" or (isinstance(policy, type) and issubclass(policy, NCAPolicy))


def evaluation_view(env: VecEnv, policy: Any) -> VecEnv:
    """``env`` as a :class:`JointEpisodeView` if it is a VecEnv of joint multi-agent envs."""
    # Joint envs expose their agents' names (ParallelJointEnv); slot VecEnvs are already unfolded.
    if agent_slots_of(env) is None and env.has_attr("agent_names"):
        return JointEpisodeView(env, joint_observation=uses_joint_observations(policy))
    return env
