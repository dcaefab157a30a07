"""Swarm2D as a PettingZoo ``ParallelEnv``: teams of point-mass agents carrying resources home.

The arena is the square ``[0, arena_size]^2``. Each team owns a hive; resources lie around the
arena, some of them heavy (they only move when two agents of one team carry them). An agent
acts with ``Box(-1, 1, (3,))``: a 2-D thrust and a grab signal (``> 0`` holds on to or picks up
the nearest reachable resource, ``<= 0`` lets go). The rules live in
:mod:`sb3_ext.envs.swarm.world`, which this class runs for a single copy of the arena.

Observation of an agent (``Box(-1, 1)``, the same size for every agent so one network serves
all of them): its own position, velocity and load flags; the K nearest other agents (relative
position and velocity, same-team flag, holding flag, present flag); the M nearest active
resources (relative position, heavy flag, carried by my team / by another team, present flag);
the relative position of its own hive.
"""

from __future__ import annotations

import numpy as np
from gymnasium import spaces
from pettingzoo import ParallelEnv

from sb3_ext.envs.swarm.render import render_arena
from sb3_ext.envs.swarm.world import Swarm2DConfig, Swarm2DWorld


class Swarm2DEnv(ParallelEnv):
    """Teams of point-mass agents collecting light and heavy resources for their hive.

    Keyword arguments are the fields of :class:`~sb3_ext.envs.swarm.world.Swarm2DConfig`:
    ``num_teams`` (2), ``agents_per_team`` (4), ``num_resources`` (8), ``num_heavy`` (2, they
    weigh and are worth 2), ``n_agent_neighbours`` (K = 4), ``n_resource_neighbours`` (M = 4),
    ``max_cycles`` (100, then every agent is truncated), ``respawn`` (True: a delivered resource
    reappears elsewhere; False: the episode terminates once all are delivered), ``reward_weights``
    (overrides of ``DEFAULT_REWARD_WEIGHTS``), and the physics constants. ``render_mode``:
    ``None`` or ``"rgb_array"`` (``render()`` returns a top-down picture).
    """

    metadata = {"name": "swarm2d_v0", "render_modes": ["rgb_array"], "render_fps": 10, "is_parallelizable": True}  # noqa: RUF012 (a plain attribute in the base class)

    def __init__(self, render_mode: str | None = None, **kwargs) -> None:
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"swarm2d: render_mode={render_mode!r}, expected None or 'rgb_array'")
        self.render_mode = render_mode
        self.config = Swarm2DConfig.from_kwargs(**kwargs)
        self.max_cycles = self.config.max_cycles  # PettingZoo's API test overrides this attribute
        self.possible_agents = [
            f"team_{k}_{j}" for k in range(self.config.num_teams) for j in range(self.config.agents_per_team)
        ]
        self.agents: list[str] = []
        #: Team index of every agent (read by the SB3 adapters to split agents into teams).
        self.agent_teams = {name: i // self.config.agents_per_team for i, name in enumerate(self.possible_agents)}
        observation_space = spaces.Box(-1.0, 1.0, (self.config.obs_dim,), dtype=np.float32)
        action_space = spaces.Box(-1.0, 1.0, (3,), dtype=np.float32)
        self.observation_spaces = dict.fromkeys(self.possible_agents, observation_space)
        self.action_spaces = dict.fromkeys(self.possible_agents, action_space)
        self.state_space = spaces.Box(-1.0, 1.0, (self.config.state_dim,), dtype=np.float32)
        self.world = Swarm2DWorld(self.config, n_copies=1, rng=np.random.default_rng())

    def observation_space(self, agent: str) -> spaces.Box:
        return self.observation_spaces[agent]

    def action_space(self, agent: str) -> spaces.Box:
        return self.action_spaces[agent]

    def reset(self, seed: int | None = None, options: dict | None = None) -> tuple[dict, dict]:
        if seed is not None:
            self.world.rng = np.random.default_rng(seed)
        self.world.reset()
        self.agents = list(self.possible_agents)
        obs = self.world.observations()[0]
        return dict(zip(self.agents, obs, strict=False)), {agent: {} for agent in self.agents}

    def step(self, actions: dict[str, np.ndarray]) -> tuple[dict, dict, dict, dict, dict]:
        """Advance one step; agents missing from ``actions`` do nothing (zero thrust, no grab)."""
        if not self.agents:
            raise RuntimeError("swarm2d: step() called after the episode ended, call reset() first")
        joint = np.zeros((1, len(self.possible_agents), 3))
        for index, agent in enumerate(self.possible_agents):
            if agent in actions:
                joint[0, index] = actions[agent]
        rewards = self.world.step(joint)[0]
        obs = self.world.observations()[0]
        terminated = bool(self.world.terminated()[0])
        truncated = not terminated and bool(self.world.cycle[0] >= self.max_cycles)
        agents = self.agents
        if terminated or truncated:
            self.agents = []
        return (
            dict(zip(agents, obs, strict=False)),
            dict(zip(agents, rewards.tolist(), strict=False)),
            dict.fromkeys(agents, terminated),
            dict.fromkeys(agents, truncated),
            {agent: {} for agent in agents},
        )

    def state(self) -> np.ndarray:
        """Global state for a centralised critic: every agent, every resource and the hives."""
        return self.world.state()[0]

    def render(self) -> np.ndarray | None:
        """A ``(256, 256, 3)`` picture of the arena with ``render_mode="rgb_array"``, else nothing."""
        if self.render_mode is None:
            return None
        return render_arena(self.world)

    @property
    def delivered_per_team(self) -> np.ndarray:
        """Resources (not weight) each team delivered since the last reset."""
        return self.world.delivered_count[0].copy()
