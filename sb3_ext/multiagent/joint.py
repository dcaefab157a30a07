"""A PettingZoo ``ParallelEnv`` seen as one gymnasium env whose observation holds every agent.

This is the bottom layer of the SB3 adapter (:mod:`sb3_ext.multiagent.vec`): SB3's own
``DummyVecEnv``/``SubprocVecEnv`` (and rl-zoo3, which builds those from a gymnasium id) vectorise
copies of this env, then :class:`~sb3_ext.multiagent.vec.AgentSlotsVecEnv` turns every agent
into one slot of the VecEnv. The joint env keeps what a single scalar reward would lose in
``info``: ``agent_rewards`` and ``agent_terminated``, one entry per agent.

The summed reward is the env's reward, so a ``Monitor`` around it records the team's summed
episode return. All agents must share one observation and one action space (parameter
sharing), and they must end their episode together (no agent leaves early).
"""

from __future__ import annotations

import importlib
from typing import Any
from collections.abc import Callable

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from pettingzoo import ParallelEnv


def stack_space(space: spaces.Space, n_agents: int, where: str) -> spaces.Space:
    """The space of ``n_agents`` stacked values of ``space`` (Box -> Box, Discrete -> MultiDiscrete)."""
    if isinstance(space, spaces.Box):
        low = np.broadcast_to(space.low, (n_agents, *space.shape))
        high = np.broadcast_to(space.high, (n_agents, *space.shape))
        return spaces.Box(low, high, dtype=space.dtype)
    if isinstance(space, spaces.Discrete) and space.start == 0:
        return spaces.MultiDiscrete(np.full(n_agents, space.n))
    raise ValueError(f"{where}: {type(space).__name__} spaces are not supported, expected Box or Discrete(n)")


def agent_space(joint_space: spaces.Space) -> spaces.Space:
    """The space of one agent's value inside a stacked ``joint_space`` (inverse of ``stack_space``)."""
    if isinstance(joint_space, spaces.Box):
        return spaces.Box(joint_space.low[0], joint_space.high[0], dtype=joint_space.dtype)
    if isinstance(joint_space, spaces.MultiDiscrete):
        return spaces.Discrete(int(joint_space.nvec[0]))
    raise ValueError(f"joint space {joint_space} is not a stacked Box or MultiDiscrete")


def agent_teams_of(par_env: ParallelEnv) -> tuple[int, ...]:
    """Team index of every possible agent: the env's ``agent_teams`` mapping, else all in team 0."""
    teams = getattr(par_env.unwrapped, "agent_teams", None)
    if teams is None:
        return (0,) * len(par_env.possible_agents)
    return tuple(int(teams[agent]) for agent in par_env.possible_agents)


class ParallelJointEnv(gym.Env):
    """Every agent of a PettingZoo ``ParallelEnv`` stacked into one gymnasium env.

    Observation ``(n_agents, *obs_shape)``, action ``(n_agents, *act_shape)`` (``MultiDiscrete``
    for discrete agents), reward = sum of the agents' rewards. ``info["agent_rewards"]`` and
    ``info["agent_terminated"]`` keep the per-agent values. The episode ends when every agent is
    done; it is a termination only if every agent terminated, else a truncation.

    :param par_env: the parallel environment (agents in ``possible_agents`` order).
    """

    def __init__(self, par_env: ParallelEnv) -> None:
        self.par_env = par_env
        self.agent_names = tuple(par_env.possible_agents)
        self.agent_teams = agent_teams_of(par_env)
        n_agents = len(self.agent_names)
        name = par_env.metadata.get("name", type(par_env).__name__)
        first = self.agent_names[0]
        for agent in self.agent_names[1:]:
            if par_env.observation_space(agent) != par_env.observation_space(first):
                raise ValueError(f"{name}: agent {agent!r} has another observation space than {first!r}; "
                                 "parameter sharing needs one space for all agents")  # fmt: skip
            if par_env.action_space(agent) != par_env.action_space(first):
                raise ValueError(f"{name}: agent {agent!r} has another action space than {first!r}; "
                                 "parameter sharing needs one space for all agents")  # fmt: skip
        self.observation_space = stack_space(par_env.observation_space(first), n_agents, name)
        self.action_space = stack_space(par_env.action_space(first), n_agents, name)
        self.metadata = dict(par_env.metadata)
        self.render_mode = getattr(par_env, "render_mode", None)
        self._name = name

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        obs, _ = self.par_env.reset(seed=seed, options=options)
        return self._stack(obs), {}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        live = self.par_env.agents
        obs, rewards, terminations, truncations, _ = self.par_env.step(
            {agent: action[i] for i, agent in enumerate(self.agent_names) if agent in live}
        )
        agent_rewards = np.array([rewards[a] for a in self.agent_names], dtype=np.float32)
        agent_terminated = np.array([terminations[a] for a in self.agent_names])
        ended = agent_terminated | np.array([truncations[a] for a in self.agent_names])
        if ended.any() and not ended.all():
            raise ValueError(f"{self._name}: agents left the episode one by one; "
                             "the SB3 adapter needs all agents to end together")  # fmt: skip
        terminated = bool(agent_terminated.all())
        truncated = bool(ended.all()) and not terminated
        info = {"agent_rewards": agent_rewards, "agent_terminated": agent_terminated}
        return self._stack(obs), float(agent_rewards.sum()), terminated, truncated, info

    def state(self) -> np.ndarray:
        """The wrapped env's global state."""
        return self.par_env.state()

    def render(self) -> Any:
        return self.par_env.render()

    def close(self) -> None:
        self.par_env.close()

    def _stack(self, obs: dict) -> np.ndarray:
        return np.stack([obs[agent] for agent in self.agent_names]).astype(self.observation_space.dtype, copy=False)


def make_joint_env(env_module: str, **env_kwargs) -> ParallelJointEnv:
    """Joint env of any PettingZoo module with a ``parallel_env`` factory, e.g. ``mpe2.simple_spread_v3``."""
    try:
        module = importlib.import_module(env_module)
    except ImportError as error:
        raise ValueError(f"env_module={env_module!r} cannot be imported ({error})") from None
    factory: Callable[..., ParallelEnv] | None = getattr(module, "parallel_env", None)
    if factory is None:
        raise ValueError(f"env_module={env_module!r} has no parallel_env() factory")
    return ParallelJointEnv(factory(**env_kwargs))
