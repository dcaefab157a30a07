"""Swarm2D physics and observations for many copies of the arena at once (numpy only).

Every quantity carries a leading copy axis: positions are ``(n_copies, n_agents, 2)``, resource
positions ``(n_copies, n_resources, 2)`` and so on, and one call advances every copy. The
PettingZoo environment runs one copy; the SB3 vectorised environment runs all its env copies
in the same arrays, so the per-call overhead of numpy is paid once per step, not once per copy.

Rules, in the order a step applies them:

1. Agents that hold a resource and no longer grab (``action[2] <= 0``) let go.
2. Empty-handed grabbing agents pick up the nearest active resource within ``pickup_radius``,
   at most two carriers per resource and only from one team; conflicts are settled nearest first.
3. Point-mass motion: ``v <- damping * v + acceleration * thrust``, speed clipped to
   ``max_speed``, walls stop the motion across them. A load moves with the mean velocity of its
   carriers times ``carry_speed`` once it has as many carriers as its weight (1 or 2); the
   carriers move with it. Carriers of a load too heavy for them stand still.
4. A load within ``hive_radius`` of its carriers' hive is delivered: the team scores its weight,
   the carriers are freed and the resource reappears elsewhere (or, without ``respawn``, leaves
   the game).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields

import numpy as np

from sb3_ext.envs.swarm.kernels import fill_observations, neighbour_distances

#: Reward terms and their default weights. ``delivery`` is the team reward (every member of the
#: team receives the weight of what the team delivered this step); the rest is optional shaping.
DEFAULT_REWARD_WEIGHTS: dict[str, float] = {
    "delivery": 1.0,  # per unit of delivered weight, shared by the whole team
    "opponent_delivery": 0.0,  # per unit the other teams delivered (set < 0 for competition)
    "progress": 0.5,  # carriers: decrease of their load's distance to the hive (potential-based)
    "approach": 0.0,  # empty-handed agents: decrease of their distance to the nearest resource
    "pickup": 0.0,  # agent: each time it starts carrying a resource
    "energy": 0.0,  # agent: times its squared thrust (set < 0 for an action cost)
}

OWN_FEATURES = 7  # position (2), velocity (2), holding, holding a heavy load, load is moving
AGENT_FEATURES = 7  # relative position (2), relative velocity (2), same team, holding, present
RESOURCE_FEATURES = 6  # relative position (2), heavy, carried by my team, by another team, present
MAX_CARRIERS = 2


@dataclass(frozen=True)
class Swarm2DConfig:
    """Parameters of a Swarm2D arena (see :class:`~sb3_ext.envs.swarm.swarm2d.Swarm2DEnv`)."""

    num_teams: int = 2
    agents_per_team: int = 4
    num_resources: int = 8
    num_heavy: int = 2
    n_agent_neighbours: int = 4
    n_resource_neighbours: int = 4
    max_cycles: int = 100
    respawn: bool = True
    reward_weights: dict[str, float] = field(default_factory=dict)
    arena_size: float = 1.0
    max_speed: float = 0.05
    acceleration: float = 0.015
    damping: float = 0.7
    carry_speed: float = 0.6
    pickup_radius: float = 0.06
    hive_radius: float = 0.1

    def __post_init__(self) -> None:
        for name in ("num_teams", "agents_per_team", "num_resources", "n_agent_neighbours",
                     "n_resource_neighbours", "max_cycles"):  # fmt: skip
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"swarm2d: {name}={value!r}, expected a positive integer")
        if not 0 <= self.num_heavy <= self.num_resources:
            raise ValueError(f"swarm2d: num_heavy={self.num_heavy!r}, expected 0..num_resources ({self.num_resources})")
        for name in ("arena_size", "max_speed", "acceleration", "carry_speed", "pickup_radius", "hive_radius"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not value > 0:
                raise ValueError(f"swarm2d: {name}={value!r}, expected a positive number")
        if not 0 <= self.damping < 1:
            raise ValueError(f"swarm2d: damping={self.damping!r}, expected a number in [0, 1)")
        unknown = set(self.reward_weights) - set(DEFAULT_REWARD_WEIGHTS)
        if unknown:
            raise ValueError(
                f"swarm2d: unknown reward weight {sorted(unknown)[0]!r}, expected one of {sorted(DEFAULT_REWARD_WEIGHTS)}"
            )
        object.__setattr__(self, "reward_weights", {**DEFAULT_REWARD_WEIGHTS, **self.reward_weights})

    @classmethod
    def from_kwargs(cls, **kwargs) -> Swarm2DConfig:
        """Build a config, naming any keyword that is not a parameter."""
        known = {f.name for f in fields(cls)}
        for key in kwargs:
            if key not in known:
                raise ValueError(f"swarm2d: unknown parameter {key!r}, expected one of {sorted(known)}")
        return cls(**kwargs)

    @property
    def n_agents(self) -> int:
        return self.num_teams * self.agents_per_team

    @property
    def obs_dim(self) -> int:
        return (
            OWN_FEATURES
            + self.n_agent_neighbours * AGENT_FEATURES
            + self.n_resource_neighbours * RESOURCE_FEATURES
            + 2
        )

    @property
    def state_dim(self) -> int:
        return self.n_agents * 5 + self.num_resources * 5 + self.num_teams * 2


class Swarm2DWorld:
    """The state of ``n_copies`` independent arenas and the rules that advance them together."""

    def __init__(self, config: Swarm2DConfig, n_copies: int, rng: np.random.Generator) -> None:
        self.config = config
        self.n_copies = n_copies
        self.rng = rng
        c = config
        self.team = np.repeat(np.arange(c.num_teams), c.agents_per_team)
        self.weight = np.ones(c.num_resources, dtype=np.int64)
        self.weight[: c.num_heavy] = 2
        # Hives sit on a circle around the centre, evenly spaced (opposite sides for two teams).
        angles = math.pi + 2 * math.pi * np.arange(c.num_teams) / c.num_teams
        self.hive_pos = c.arena_size * (0.5 + 0.35 * np.stack([np.cos(angles), np.sin(angles)], axis=1))
        weights = c.reward_weights
        self._w_energy, self._w_pickup, self._w_progress = weights["energy"], weights["pickup"], weights["progress"]
        self._w_approach = weights["approach"]
        self._w_delivery, self._w_opponent = weights["delivery"], weights["opponent_delivery"]

        b, n, r = n_copies, c.n_agents, c.num_resources
        self.cycle = np.zeros(b, dtype=np.int64)
        self.pos = np.zeros((b, n, 2))
        self.vel = np.zeros((b, n, 2))
        self.holding = np.full((b, n), -1, dtype=np.int64)  # index of the carried resource, or -1
        self.res_pos = np.zeros((b, r, 2))
        self.active = np.ones((b, r), dtype=bool)
        self.delivered_count = np.zeros((b, c.num_teams), dtype=np.int64)
        self._copy_of_agent = np.repeat(np.arange(b), n).reshape(b, n)
        self._agent_team = np.tile(self.team, (b, 1))  # team of every agent of every copy
        self._weight_flat = np.tile(self.weight, b)  # weight of every resource of every copy
        # Scratch for observations(): squared distances of every agent to every agent / resource.
        self._agent_distance = np.empty((b, n, n))
        self._resource_distance = np.empty((b, n, r))
        self.reset()

    # ----------------------------------------------------------------------------------------
    def reset(self, copies: np.ndarray | None = None) -> None:
        """Start new episodes in ``copies`` (indices; every copy when ``None``)."""
        c = self.config
        copies = np.arange(self.n_copies) if copies is None else np.asarray(copies)
        self.cycle[copies] = 0
        self.vel[copies] = 0.0
        self.holding[copies] = -1
        self.active[copies] = True
        self.delivered_count[copies] = 0
        jitter = self.rng.uniform(-c.hive_radius, c.hive_radius, size=(len(copies), c.n_agents, 2))
        self.pos[copies] = np.clip(self.hive_pos[self.team] + jitter, 0.0, c.arena_size)
        self._spawn(np.repeat(copies, c.num_resources), np.tile(np.arange(c.num_resources), len(copies)))

    def step(self, actions: np.ndarray) -> np.ndarray:
        """Advance every copy by one step; ``actions`` is ``(n_copies, n_agents, 3)``. Returns rewards."""
        act = np.clip(actions, -1.0, 1.0)
        thrust, grab = act[..., :2], act[..., 2] > 0.0
        rewards = np.zeros(self.holding.shape)
        if self._w_energy:
            rewards += self._w_energy * (thrust**2).sum(axis=2)
        self.holding[~grab] = -1
        picked = self._pick_up(grab)
        if self._w_pickup:
            rewards += self._w_pickup * picked

        # Carriers stay the same from here to the end of the step: index them once.
        carrying = self.holding >= 0
        loads = self._flat_loads(carrying)
        hives = self.hive_pos[self._agent_team[carrying]]
        res_pos = self.res_pos.reshape(-1, 2)  # a view: updates land in self.res_pos
        distance_before = _norm(res_pos[loads] - hives)
        if self._w_approach:
            nearest_before = self._nearest_resource_distance()
        self._move(thrust, carrying, loads)
        distance_after = _norm(res_pos[loads] - hives)
        rewards[carrying] += self._w_progress * (distance_before - distance_after)
        if self._w_approach:
            approach = nearest_before - self._nearest_resource_distance()
            rewards[~carrying] += self._w_approach * approach[~carrying]

        delivered = self._deliver(carrying, loads, distance_after)
        own = delivered[:, self.team]
        rewards += self._w_delivery * own
        if self._w_opponent:
            rewards += self._w_opponent * (delivered.sum(axis=1, keepdims=True) - own)
        self.cycle += 1
        return rewards

    def terminated(self) -> np.ndarray:
        """Copies whose resources are all delivered (only possible without ``respawn``)."""
        if self.config.respawn:
            return np.zeros(self.n_copies, dtype=bool)
        return np.logical_not(self.active.any(axis=1))

    # ----------------------------------------------------------------------------------------
    def _flat_loads(self, carrying: np.ndarray) -> np.ndarray:
        """Index into ``(n_copies * n_resources)`` of the load of every carrying agent."""
        return self._copy_of_agent[carrying] * self.config.num_resources + self.holding[carrying]

    def _owner_and_count(self) -> tuple[np.ndarray, np.ndarray]:
        """Team carrying each resource (-1 if none) and its number of carriers, both flat."""
        size = self.n_copies * self.config.num_resources
        carrying = self.holding >= 0
        loads = self._flat_loads(carrying)
        owner = np.full(size, -1)
        owner[loads] = self._agent_team[carrying]
        return owner, np.bincount(loads, minlength=size)

    def _nearest_resource_distance(self) -> np.ndarray:
        """``(n_copies, n_agents)`` distance of every agent to its nearest active resource."""
        distance = _norm(self.res_pos[:, None, :, :] - self.pos[:, :, None, :])
        distance[~np.broadcast_to(self.active[:, None, :], distance.shape)] = np.inf
        nearest = distance.min(axis=2)
        return np.where(np.isfinite(nearest), nearest, 0.0)

    def _spawn(self, copies: np.ndarray, resources: np.ndarray) -> None:
        """Place resources uniformly, away from the walls and clear of every hive."""
        c = self.config
        margin = 0.05 * c.arena_size
        clearance = c.hive_radius + 2 * c.pickup_radius
        for _ in range(1000):
            if not len(copies):
                return
            spot = self.rng.uniform(margin, c.arena_size - margin, size=(len(copies), 2))
            self.res_pos[copies, resources] = spot
            gap = _norm(spot[:, None, :] - self.hive_pos[None]).min(axis=1)
            copies, resources = copies[gap < clearance], resources[gap < clearance]
        raise ValueError(
            f"swarm2d: no room for resources clear of the hives (hive_radius={c.hive_radius}, "
            f"pickup_radius={c.pickup_radius}, arena_size={c.arena_size}); expected smaller radii"
        )

    def _pick_up(self, grab: np.ndarray) -> np.ndarray:
        """Attach empty-handed grabbing agents to a resource in reach; returns who picked up."""
        c = self.config
        picked = np.zeros(self.holding.shape, dtype=bool)
        wants = grab & (self.holding < 0)
        if not wants.any():
            return picked
        bb, ii = np.nonzero(wants)
        distance = _norm(self.pos[bb, ii, None, :] - self.res_pos[bb])
        distance[~self.active[bb] | (distance > c.pickup_radius)] = np.inf
        nearest = distance.argmin(axis=1)
        gap = distance[np.arange(len(bb)), nearest]
        reached = np.isfinite(gap)
        if not reached.any():
            return picked
        bb, ii, target, gap = bb[reached], ii[reached], nearest[reached], gap[reached]
        flat = bb * c.num_resources + target
        team = self.team[ii]
        owner, count = self._owner_and_count()
        # Settle requests per resource, nearest first: the resource belongs to its current team,
        # or to the team of the nearest requester; it takes at most MAX_CARRIERS carriers.
        order = np.lexsort((gap, flat))
        bb, ii, target, flat, team = bb[order], ii[order], target[order], flat[order], team[order]
        starts = np.r_[True, flat[1:] != flat[:-1]]
        group_start = np.maximum.accumulate(np.where(starts, np.arange(len(flat)), 0))
        group_team = np.where(owner[flat] >= 0, owner[flat], team[group_start])
        eligible = team == group_team
        seen = np.cumsum(eligible) - eligible  # eligible requests before this one
        rank = seen - seen[group_start]
        accept = eligible & (count[flat] + rank < MAX_CARRIERS)
        self.holding[bb[accept], ii[accept]] = target[accept]
        picked[bb[accept], ii[accept]] = True
        return picked

    def _move(self, thrust: np.ndarray, carrying: np.ndarray, loads: np.ndarray) -> None:
        c = self.config
        vel = c.damping * self.vel + c.acceleration * thrust
        speed = _norm(vel)[..., None]
        vel *= np.minimum(1.0, c.max_speed / np.maximum(speed, 1e-12))

        res_pos = self.res_pos.reshape(-1, 2)  # a view: updates land in self.res_pos
        if len(loads):
            size = len(res_pos)
            count = np.bincount(loads, minlength=size)
            # A load moves with its carriers' mean velocity, slowed, once it has enough carriers.
            factor = np.where(count >= self._weight_flat, c.carry_speed / np.maximum(count, 1), 0.0)
            carrier_vel = vel[carrying]
            load_vel = np.stack([np.bincount(loads, carrier_vel[:, 0], size), np.bincount(loads, carrier_vel[:, 1], size)], 1)
            load_vel *= factor[:, None]
            res_pos += load_vel
            np.clip(res_pos, 0.0, c.arena_size, out=res_pos)
            vel[carrying] = load_vel[loads]

        pos = self.pos + vel
        vel[(pos < 0.0) | (pos > c.arena_size)] = 0.0
        np.clip(pos, 0.0, c.arena_size, out=pos)
        if len(loads):
            pos[carrying] = res_pos[loads]
        self.pos, self.vel = pos, vel

    def _deliver(self, carrying: np.ndarray, loads: np.ndarray, distance: np.ndarray) -> np.ndarray:
        """Deliver loads inside their carriers' hive; returns ``(n_copies, n_teams)`` delivered weight."""
        c = self.config
        delivered = np.zeros((self.n_copies, c.num_teams))
        inside = distance <= c.hive_radius
        if not inside.any():
            return delivered
        done, first = np.unique(loads[inside], return_index=True)
        done_team = self._agent_team[carrying][inside][first]
        done_copy, done_res = np.divmod(done, c.num_resources)
        np.add.at(delivered, (done_copy, done_team), self.weight[done_res])
        np.add.at(self.delivered_count, (done_copy, done_team), 1)
        freed = np.zeros(self.n_copies * c.num_resources, dtype=bool)
        freed[done] = True
        released = np.zeros_like(carrying)
        released[carrying] = freed[loads]
        self.holding[released] = -1
        if c.respawn:
            self._spawn(done_copy, done_res)
        else:
            self.active[done_copy, done_res] = False
            self.res_pos[done_copy, done_res] = self.hive_pos[done_team]
        return delivered

    # ----------------------------------------------------------------------------------------
    def observations(self) -> np.ndarray:
        """``(n_copies, n_agents, obs_dim)`` float32 observations, every entry in ``[-1, 1]``.

        Per agent: itself (position, velocity, holding, holding a heavy load, load moving), its
        ``n_agent_neighbours`` nearest other agents and ``n_resource_neighbours`` nearest active
        resources (nearest first, zeros when there are fewer), and the offset to its hive. Built
        by a compiled loop (:func:`~sb3_ext.envs.swarm.kernels.fill_observations`): on one arena
        numpy's per-call overhead dominated the env step.
        """
        c = self.config
        owner, count = self._owner_and_count()
        neighbour_distances(self.pos, self.res_pos, self.active, self._agent_distance, self._resource_distance)
        obs = np.zeros((*self.holding.shape, c.obs_dim), np.float32)
        fill_observations(
            obs, self.pos, self.vel, self.holding, self.team, self.weight, self.res_pos, self.active,
            owner, count, np.argsort(self._agent_distance, axis=2), np.argsort(self._resource_distance, axis=2),
            self.hive_pos, float(c.arena_size), float(c.max_speed),
            c.n_agent_neighbours, c.n_resource_neighbours,
        )  # fmt: skip
        return obs

    def state(self) -> np.ndarray:
        """``(n_copies, state_dim)`` global state: every agent, every resource and the hives."""
        c = self.config
        b = self.n_copies
        scale = 2.0 / c.arena_size
        _, count = self._owner_and_count()
        parts = [
            self.pos * scale - 1.0,
            self.vel / c.max_speed,
            (self.holding >= 0)[..., None],
            self.res_pos * scale - 1.0,
            np.broadcast_to((self.weight > 1)[None, :, None], (b, c.num_resources, 1)),
            self.active[..., None],
            (count.reshape(b, -1) / MAX_CARRIERS)[..., None],
            np.broadcast_to(self.hive_pos * scale - 1.0, (b, c.num_teams, 2)),
        ]
        return np.concatenate([np.asarray(p, np.float32).reshape(b, -1) for p in parts], axis=1)


def _norm(vectors: np.ndarray) -> np.ndarray:
    """Euclidean norm over the last axis (of length 2), cheaper than ``np.linalg.norm``."""
    return np.hypot(vectors[..., 0], vectors[..., 1])
