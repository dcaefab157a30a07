"""Many Swarm2D arenas as one SB3 ``VecEnv`` of joint envs, stepped by one numpy world.

It behaves exactly like ``DummyVecEnv`` over ``n_copies`` :class:`ParallelJointEnv` copies of
``swarm2d_v0`` (same observations, ``agent_rewards``/``agent_terminated`` infos, automatic
reset with ``terminal_observation`` and ``TimeLimit.truncated``), but every copy lives in the same
arrays of :class:`~sb3_ext.envs.swarm.world.Swarm2DWorld`, so a step of all copies costs about
as much numpy overhead as a step of one. Wrap it in
:class:`~sb3_ext.multiagent.vec.AgentSlotsVecEnv` to get one slot per agent.

Seeding: the copies share one random generator, seeded with the first of the seeds SB3 hands to
``seed()``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces
from stable_baselines3.common.vec_env.base_vec_env import VecEnv, VecEnvIndices, VecEnvStepReturn

from sb3_ext.envs.swarm.render import render_arena
from sb3_ext.envs.swarm.world import Swarm2DConfig, Swarm2DWorld


class Swarm2DVecEnv(VecEnv):
    """``n_copies`` Swarm2D arenas, each a joint env (observation ``(n_agents, obs_dim)``).

    :param n_copies: number of independent arenas.
    :param render_mode: ``None`` or ``"rgb_array"`` (``get_images`` draws every arena).
    :param kwargs: ``swarm2d_v0`` parameters (fields of ``Swarm2DConfig``).

    At the end of an episode, ``info`` also holds ``delivered`` (resources delivered by all teams)
    and ``delivered_per_team``.
    """

    metadata = {"render_modes": ["rgb_array"]}  # noqa: RUF012 (a plain attribute in the base class)

    def __init__(self, n_copies: int = 1, render_mode: str | None = None, **kwargs) -> None:
        if not isinstance(n_copies, int) or n_copies < 1:
            raise ValueError(f"swarm2d: n_copies={n_copies!r}, expected a positive integer")
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"swarm2d: render_mode={render_mode!r}, expected None or 'rgb_array'")
        self.config = Swarm2DConfig.from_kwargs(**kwargs)
        c = self.config
        self.agent_names = tuple(f"team_{k}_{j}" for k in range(c.num_teams) for j in range(c.agents_per_team))
        self.agent_teams = tuple(i // c.agents_per_team for i in range(c.n_agents))
        self.render_mode = render_mode
        observation_space = spaces.Box(-1.0, 1.0, (c.n_agents, c.obs_dim), dtype=np.float32)
        action_space = spaces.Box(-1.0, 1.0, (c.n_agents, 3), dtype=np.float32)
        super().__init__(n_copies, observation_space, action_space)
        self.world = Swarm2DWorld(c, n_copies, np.random.default_rng())
        self._actions = np.zeros((n_copies, c.n_agents, 3))

    def reset(self) -> np.ndarray:
        if self._seeds[0] is not None:
            self.world.rng = np.random.default_rng(self._seeds[0])
        self._reset_seeds()
        self._reset_options()
        self.world.reset()
        self.reset_infos = [{} for _ in range(self.num_envs)]
        return self.world.observations()

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions).reshape(self._actions.shape)

    def step_wait(self) -> VecEnvStepReturn:
        world = self.world
        rewards = world.step(self._actions).astype(np.float32)
        obs = world.observations()
        terminated = world.terminated()
        truncated = ~terminated & (world.cycle >= self.config.max_cycles)
        dones = terminated | truncated
        n_agents = self.config.n_agents
        infos: list[dict[str, Any]] = [
            {"agent_rewards": rewards[i], "agent_terminated": np.full(n_agents, terminated[i])}
            for i in range(self.num_envs)
        ]
        if dones.any():
            finished = np.flatnonzero(dones)
            for i in finished:
                infos[i]["terminal_observation"] = obs[i]
                infos[i]["TimeLimit.truncated"] = bool(truncated[i])
                infos[i]["delivered"] = int(world.delivered_count[i].sum())
                infos[i]["delivered_per_team"] = world.delivered_count[i].copy()
            world.reset(finished)
            obs = world.observations()
        return obs, rewards.sum(axis=1), dones, infos

    def state(self) -> np.ndarray:
        """``(n_copies, state_dim)`` global states."""
        return self.world.state()

    def get_images(self) -> list[np.ndarray]:
        return [render_arena(self.world, copy) for copy in range(self.num_envs)]

    def close(self) -> None:
        pass

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        return [getattr(self, attr_name)] * len(list(self._get_indices(indices)))

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        raise AttributeError(f"swarm2d: copies share their parameters, {attr_name!r} cannot be set per copy")

    def env_method(self, method_name: str, *method_args, indices: VecEnvIndices = None, **method_kwargs) -> list[Any]:
        raise AttributeError(f"swarm2d: copies have no methods of their own (asked for {method_name!r})")

    def env_is_wrapped(self, wrapper_class: type, indices: VecEnvIndices = None) -> list[bool]:
        return [False] * len(list(self._get_indices(indices)))
