"""``LatticeSwarm-v0``: SOS growth steered by a swarm of agents that grows with the lattice.

The same physics and biased-event step as ``LatticeGrowth-v0``, but ``agent_density`` agents per
column (every column at density 1), each with its own local view and its own reward term (see
``agent_swarm``). It is a *joint* multi-agent env in the layout of the package's multi-agent
adapter: observation ``(n_agents, obs_size)``, action ``(n_agents, 5)``, ``info["agent_rewards"]``
and ``info["agent_terminated"]``, ``agent_names`` / ``agent_teams``. ``AgentSlotsVecEnv`` unfolds
it into one VecEnv slot per agent, so SB3's PPO trains one small network shared by every agent,
with agents as batch entries: PPO's advantages are per agent, and the network's size depends on
neither the lattice nor the number of agents, so it runs unchanged on any lattice.

A zero action is exact KMC (the event stream of ``LatticeKMC.run``) with every ESS exactly 1.
The scalar reward is the sum of the agents' terms (what ``VecMonitor`` records).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from gymnasium import spaces

from sb3_ext.envs.lattice.agent_swarm import (
    agent_observation_size,
    agent_swarm_step,
    observe_swarm,
    place_swarm,
    temperature_feature,
)
from sb3_ext.envs.lattice.env import EVENTS_PER_AGENT, LatticeGrowthEnv, _lattice_size


def agents_for(lattice_size: Sequence[int], agent_density: float) -> int:
    """Number of agents on a lattice: ``round(density * nx * ny)``, at least 1."""
    if isinstance(agent_density, bool) or not isinstance(agent_density, (int, float)) or not 0 < agent_density <= 1:
        raise ValueError(f"agent_density: expected agents per column in (0, 1], got {agent_density!r}")
    nx, ny, _ = _lattice_size(lattice_size)
    return max(1, round(agent_density * nx * ny))


def _finite_non_negative(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value) or value < 0:
        raise ValueError(f"{name}: expected a finite number >= 0, got {value!r}")
    return float(value)


class LatticeSwarmEnv(LatticeGrowthEnv):
    """SOS thin-film growth under KMC with one agent per column (or ``agent_density`` per column).

    :param agent_density: agents per column in (0, 1]; 1 puts an agent on every column, less
        draws ``round(density * nx * ny)`` columns in proportion to their rate each step.
    :param roughness_gain: weight of each agent's share of the expected roughening it prevents.
    :param ess_cost: weight of each agent's share of ``1 / ESS - 1``.
    Other parameters as ``LatticeGrowth-v0`` (``reward_weights`` do not apply: the reward is the
    agents' local terms).
    """

    def __init__(
        self,
        lattice_size: Sequence[int] = (8, 8, 5),
        temperature: float = 600.0,
        deposition_rate: float = 1.0,
        max_steps: int = 100,
        agent_density: float = 1.0,
        n_proposals: int = 4,
        roughness_gain: float = 1.0,
        ess_cost: float = 1.0,
        *,
        nu: float = 1e13,
        e_s: float = 1.3,
        e_n: float = 0.3,
        e_es: float = 0.1,
        max_bias: float = 3.0,
        patch_radius: int = 2,
        stop_height: float | None = None,
        render_mode: str | None = None,
        reward_weights: Mapping[str, float] | None = None,
    ) -> None:
        n_agents = agents_for(lattice_size, agent_density)
        super().__init__(
            lattice_size, temperature, deposition_rate, max_steps, n_agents, n_proposals, reward_weights,
            nu=nu, e_s=e_s, e_n=e_n, e_es=e_es, max_bias=max_bias, patch_radius=patch_radius,
            stop_height=stop_height, render_mode=render_mode,
        )  # fmt: skip
        self.every_column = n_agents == self.engine.column_heights.size
        self.roughness_gain = _finite_non_negative("roughness_gain", roughness_gain)
        self.ess_cost = _finite_non_negative("ess_cost", ess_cost)
        self.temperature_feature = temperature_feature(self.engine.physics.temperature)
        n_obs = agent_observation_size(self.patch_radius)
        self.observation_space = spaces.Box(-1.0, 1.0, shape=(n_agents, n_obs), dtype=np.float32)
        self.action_space = spaces.Box(-1.0, 1.0, shape=(n_agents, EVENTS_PER_AGENT), dtype=np.float32)
        self._obs = np.zeros((n_agents, n_obs), dtype=np.float32)
        self._rewards = np.zeros(n_agents, dtype=np.float64)
        self.agent_names = tuple(f"agent_{a}" for a in range(n_agents))
        self.agent_teams = (0,) * n_agents

    @property
    def n_agents(self) -> int:
        return self.n_swarm

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        self._start_episode(seed)
        e = self.engine
        place_swarm(e.rates, e.bexp, e.tree, e.geom, self._swarm_rng, self.every_column, self.agent_columns)
        observe_swarm(
            e.column_heights, e.counters, e.nbr, e.geom, self.agent_columns, self.agent_frames,
            self.patch_radius, 0.0, self.temperature_feature, self._obs,
        )  # fmt: skip
        return self._obs.copy(), self._step_info(ess=1.0)

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        biases = self._biases(action)
        e = self.engine
        self._steps += 1
        done, ess_sum = agent_swarm_step(
            *e.kernel_state(), self.agent_columns, self.agent_frames, biases, self.n_proposals, e.rng,
            self._swarm_rng, self.every_column, self.roughness_gain, self.ess_cost, self.patch_radius,
            self._steps / self.max_steps, self.temperature_feature, self._rewards, self._obs,
        )  # fmt: skip
        ess = ess_sum / done if done else 1.0
        self._ess_total += ess
        terminated, truncated, info = self._episode_end(ess)
        info["agent_rewards"] = self._rewards.astype(np.float32)
        info["agent_terminated"] = np.full(self.n_swarm, terminated)
        return self._obs.copy(), float(self._rewards.sum()), terminated, truncated, info
