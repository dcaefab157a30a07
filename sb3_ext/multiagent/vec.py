"""SB3 adapter for multi-agent envs: every agent of every env copy is one slot of a ``VecEnv``.

One network then serves every agent (parameter sharing), and any SB3 algorithm trains on it
unchanged. The layers are:

1. a VecEnv of *joint* envs (observation ``(n_agents, ...)``, ``info["agent_rewards"]``):
   SB3's ``DummyVecEnv``/``SubprocVecEnv`` over :class:`ParallelJointEnv` copies of any
   PettingZoo ``ParallelEnv``, or :class:`Swarm2DVecEnv`, which steps all Swarm2D copies in one
   numpy world; ``VecMonitor`` on top records the summed episode return;
2. :class:`AgentSlotsVecEnv`, which unfolds the agents into slots ``copy * n_agents + agent``.

Why not SuperSuit (``pettingzoo_env_to_vec_env_v1`` + ``concat_vec_envs_v1``)? With SB3 2.9
and SuperSuit 3.11 its ``SB3VecEnvWrapper`` merges terminations and truncations into ``dones``
without setting ``TimeLimit.truncated``, so SB3 treats every time-limit end as a termination and
stops bootstrapping there; and ``model = PPO(..., seed=0)`` fails because its ``ConcatVecEnv`` has
no ``seed()`` (SB3 2.x seeds VecEnvs through ``VecEnv.seed``). Building on SB3's own VecEnvs
keeps SB3's auto-reset, seeding, subprocess support and ``Monitor`` semantics instead.

Time-limit ends reach SB3 as truncations: every slot of a finished copy has ``done = True``,
its own ``terminal_observation`` and ``TimeLimit.truncated = True`` unless that agent terminated.
The copy's ``episode`` record (summed return over agents) is passed on in its first slot only,
so ``rollout/ep_rew_mean`` counts each episode once.
"""

from __future__ import annotations

import inspect
from typing import Any
from collections.abc import Callable

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from pettingzoo import ParallelEnv
from stable_baselines3.common.vec_env import (
    DummyVecEnv,
    SubprocVecEnv,
    VecEnv,
    VecEnvWrapper,
    VecMonitor,
    unwrap_vec_wrapper,
)
from stable_baselines3.common.vec_env.base_vec_env import (
    VecEnvIndices,
    VecEnvObs,
    VecEnvStepReturn,
)

from sb3_ext.multiagent.joint import ParallelJointEnv, agent_space

# Keys of a copy's info that the slot wrapper rewrites per agent rather than passing on.
_PER_AGENT_KEYS = ("agent_rewards", "agent_terminated", "terminal_observation", "TimeLimit.truncated", "episode")


class AgentSlotsVecEnv(VecEnvWrapper):
    """One VecEnv slot per agent of each copy of a joint multi-agent VecEnv.

    :param venv: VecEnv of joint envs: observation ``(n_agents, *obs_shape)``, action
        ``(n_agents, *act_shape)`` or ``MultiDiscrete``, infos with ``agent_rewards`` and
        ``agent_terminated`` (as :class:`ParallelJointEnv` and :class:`Swarm2DVecEnv` give).
    :param joint_observation: give every slot the observations of all agents of its copy,
        ``(n_agents, *obs_shape)``, its own first and the others in cyclic order. Policies that
        look at neighbours (``NCAPolicy``) need this; SB3 samples minibatches row by row, so a
        row has to carry its whole copy.

    Slot ``copy * n_agents + agent`` holds ``agent`` of ``copy``. ``agent_names`` and
    ``agent_teams`` (team index per agent of one copy) tell algorithms how the slots group.
    """

    def __init__(self, venv: VecEnv, joint_observation: bool = False) -> None:
        joint_space = venv.observation_space
        if not isinstance(joint_space, spaces.Box) or len(joint_space.shape) < 2:
            raise ValueError(f"AgentSlotsVecEnv: observation space {joint_space} is not a joint (n_agents, ...) Box")
        self.n_agents = joint_space.shape[0]
        self.n_copies = venv.num_envs
        self.joint_observation = joint_observation
        self.agent_names = tuple(venv.get_attr("agent_names", [0])[0])
        self.agent_teams = tuple(venv.get_attr("agent_teams", [0])[0])
        observation_space = joint_space if joint_observation else agent_space(joint_space)
        self._slot_shape = joint_space.shape if joint_observation else joint_space.shape[1:]
        # VecEnvWrapper.__init__ would give us the copies' count of slots; we have n_agents per copy.
        self.venv = venv
        VecEnv.__init__(self, self.n_copies * self.n_agents, observation_space, agent_space(venv.action_space))
        self.class_attributes = dict(inspect.getmembers(self.__class__))
        # Row a of _roll lists the agents in the order slot a sees them: itself first.
        self._roll = (np.arange(self.n_agents)[:, None] + np.arange(self.n_agents)[None, :]) % self.n_agents

    def reset(self) -> VecEnvObs:
        obs = self.venv.reset()
        self.reset_infos = [dict(info) for info in self.venv.reset_infos for _ in range(self.n_agents)]
        return self._slots(obs)

    def step_async(self, actions: np.ndarray) -> None:
        actions = np.asarray(actions)
        self.venv.step_async(actions.reshape(self.n_copies, self.n_agents, *actions.shape[1:]))

    def step_wait(self) -> VecEnvStepReturn:
        obs, _, copy_dones, copy_infos = self.venv.step_wait()
        rewards = np.stack([info["agent_rewards"] for info in copy_infos]).astype(np.float32).reshape(-1)
        dones = np.repeat(copy_dones, self.n_agents)
        infos: list[dict[str, Any]] = []
        for copy_info, done in zip(copy_infos, copy_dones, strict=False):
            shared = {k: v for k, v in copy_info.items() if k not in _PER_AGENT_KEYS}
            slot_infos = [dict(shared) for _ in range(self.n_agents)]
            if done:
                terminal = self._slots(copy_info["terminal_observation"][None])
                for agent, info in enumerate(slot_infos):
                    info["terminal_observation"] = terminal[agent]
                    info["TimeLimit.truncated"] = not bool(copy_info["agent_terminated"][agent])
                if "episode" in copy_info:
                    slot_infos[0]["episode"] = copy_info["episode"]
            infos.extend(slot_infos)
        return self._slots(obs), rewards, dones, infos

    def _slots(self, joint_obs: VecEnvObs) -> np.ndarray:
        """``(n_copies, n_agents, ...)`` -> one row per slot."""
        joint_obs = slot_observations(joint_obs)
        if self.joint_observation:
            joint_obs = joint_obs[:, self._roll]
        return joint_obs.reshape(-1, *self._slot_shape)

    def _per_slot(self, indices: VecEnvIndices, ask_copies: Callable[[list[int]], list[Any]]) -> list[Any]:
        """Ask each copy behind the slots ``indices`` once, and answer per slot."""
        copies = [slot // self.n_agents for slot in self._get_indices(indices)]
        unique = sorted(set(copies))
        by_copy = dict(zip(unique, ask_copies(unique), strict=False))
        return [by_copy[c] for c in copies]

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        return self._per_slot(indices, lambda copies: self.venv.get_attr(attr_name, copies))

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        self._per_slot(indices, lambda copies: [self.venv.set_attr(attr_name, value, copies)] * len(copies))

    def env_method(self, method_name: str, *method_args, indices: VecEnvIndices = None, **method_kwargs) -> list[Any]:
        return self._per_slot(
            indices, lambda copies: self.venv.env_method(method_name, *method_args, indices=copies, **method_kwargs)
        )

    def env_is_wrapped(self, wrapper_class: type[gym.Wrapper], indices: VecEnvIndices = None) -> list[bool]:
        return self._per_slot(indices, lambda copies: self.venv.env_is_wrapped(wrapper_class, copies))


def make_parallel_vec_env(
    env_fn: Callable[[], ParallelEnv],
    n_copies: int = 1,
    joint_observation: bool = False,
    seed: int | None = None,
    vec_env_cls: type[DummyVecEnv | SubprocVecEnv] = DummyVecEnv,
) -> AgentSlotsVecEnv:
    """Slots over ``n_copies`` copies of any PettingZoo ``ParallelEnv`` made by ``env_fn``."""
    venv = VecMonitor(vec_env_cls([lambda: ParallelJointEnv(env_fn()) for _ in range(n_copies)]))
    venv.seed(seed)
    return AgentSlotsVecEnv(venv, joint_observation=joint_observation)


def slot_observations(obs: VecEnvObs) -> np.ndarray:
    """Observations of a joint or agent-slot VecEnv as the one array they are (their space is a
    Box: :class:`AgentSlotsVecEnv` refuses any other)."""
    if not isinstance(obs, np.ndarray):
        raise TypeError(f"agent slots: observations are a {type(obs).__name__}, expected one array (a Box space)")
    return obs


def agent_slots_of(env: VecEnv) -> AgentSlotsVecEnv | None:
    """The ``AgentSlotsVecEnv`` inside a stack of VecEnv wrappers, if there is one."""
    found = unwrap_vec_wrapper(env, AgentSlotsVecEnv)
    return found if isinstance(found, AgentSlotsVecEnv) else None


def to_agent_slots(env: Any, joint_observation: bool = False) -> VecEnv:
    """Whatever multi-agent env a user hands an algorithm, as a VecEnv with one slot per agent.

    Accepts a PettingZoo ``ParallelEnv`` (one copy), a joint gymnasium env (``ParallelJointEnv``,
    e.g. ``gym.make("Swarm2D-v0")``), a VecEnv of joint envs (as rl-zoo3 builds), or a VecEnv that
    already has agent slots (returned unchanged). Anything else is returned unchanged, so
    single-agent envs keep working (one agent per copy).
    """
    if isinstance(env, ParallelEnv):
        return make_parallel_vec_env(lambda: env, joint_observation=joint_observation)
    if isinstance(env, gym.Env) and isinstance(env.unwrapped, ParallelJointEnv):
        return AgentSlotsVecEnv(VecMonitor(DummyVecEnv([lambda: env])), joint_observation=joint_observation)
    if isinstance(env, VecEnv) and agent_slots_of(env) is None and env.has_attr("agent_names"):
        return AgentSlotsVecEnv(env, joint_observation=joint_observation)
    return env
