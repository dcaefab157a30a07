"""The fixed agents of ``LatticeGrowth-v0`` (a stage file's ``agents.mode: fixed``): their compiled
step (agent placement, biased events, observation) and the agent frames and patches that the
per-column agents of ``LatticeSwarm-v0`` (:mod:`~sb3_ext.envs.lattice.agent_swarm`) reuse.

One RL step is a single call to ``fixed_agents_step`` so that its cost is a few microseconds per event
plus O(n_swarm * patch) for the observation, independent of the lattice area.

**Agent frames.** The SOS physics is symmetric under the 8 rotations and reflections of the
square lattice, so each agent sees and acts in its own frame: local +x points to its lowest
nearest neighbour (the first in the order +x, -x, +y, -y on ties) and local +y to the lower of
the two perpendicular neighbours (the first on ties). The agent's patch is read in that frame
and its four hop biases are hops towards local +x, -x, +y, -y. A fixed bias such as "favour
local +x" then means "favour the lowest neighbour" wherever the agent stands, which a policy
learns far faster than the same rule spelled out for every absolute direction.
``frames[a, L]`` is the absolute direction slot (0..3 = +x, -x, +y, -y) of local direction L.

Observation layout (float32, every entry in [-1, 1]); ``patch = (2r + 1)^2``:

- per agent ``a`` (``n_swarm`` blocks of ``patch + 2``): the heights of the ``(2r+1) x (2r+1)``
  columns around the agent relative to the agent's column, ``clip(h - h_agent, -3, 3) / 3``,
  in the agent's frame, local-x-major (``[u, v]`` for u, v in -r..r), then ``h_agent / nz`` and
  ``clip(h_agent - mean_h, -3, 3) / 3``;
- globals (5): coverage, ``min(W / 3, 1)``, ``mean_h / nz``, the fraction of the episode done, and
  the share of the total rate carried by the agents' columns.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from sb3_ext.envs.lattice.kernels import (
    N_COVERED,
    N_SLOTS,
    SUM_H,
    SUM_H2,
    clear_biases,
    leaf_value,
    next_uniform,
    refresh_leaf,
    run_biased_events,
    select_event,
    set_biases,
    tree_set,
)

HEIGHT_CLIP = 3.0  # relative heights beyond +-3 monolayers all read as "far above/below"
N_AGENT_EXTRAS = 2
N_GLOBALS = 5


def observation_size(n_swarm: int, patch_radius: int) -> int:
    side = 2 * patch_radius + 1
    return n_swarm * (side * side + N_AGENT_EXTRAS) + N_GLOBALS


@njit(cache=True)
def draw_agent_columns(rates, bexp, tree, geom, rng, out_columns) -> None:
    """Put the agents on distinct columns drawn with probability proportional to column rate.

    Sampling without replacement: a drawn column's leaf is zeroed until every agent is placed,
    then restored from its rates (bit-identical, so the event stream is not perturbed). When
    fewer columns than agents have a non-zero rate (a nearly full lattice), the rest go to
    uniformly drawn free columns, where their biases act on nothing. O(n_agents log N) unless
    the lattice is nearly full.
    """
    n_cols = rates.shape[0]
    for a in range(out_columns.shape[0]):
        if tree[1] > 0.0:
            col, _ = select_event(rates, bexp, tree, next_uniform(rng) * tree[1], geom)
        else:
            while True:
                col = min(int(next_uniform(rng) * n_cols), n_cols - 1)
                taken = False
                for b in range(a):
                    taken = taken or out_columns[b] == col
                if not taken:
                    break
        out_columns[a] = col
        tree_set(tree, geom[3], col, 0.0)
    for a in range(out_columns.shape[0]):
        refresh_leaf(rates, bexp, tree, out_columns[a], geom)


@njit(cache=True)
def place_agents(rates, bexp, tree, geom, rng, out_columns) -> None:
    """``draw_agent_columns``, then order the agents by decreasing column rate.

    Ordered so that an observation slot keeps the same role from step to step (slot 0 is the
    most mobile atom, usually a free adatom), which a policy network learns much more easily
    than a slot of random meaning.
    """
    draw_agent_columns(rates, bexp, tree, geom, rng, out_columns)
    for a in range(1, out_columns.shape[0]):  # insertion sort: n_swarm is small
        col = out_columns[a]
        rate = leaf_value(rates, bexp, col)
        b = a
        while b > 0 and leaf_value(rates, bexp, out_columns[b - 1]) < rate:
            out_columns[b] = out_columns[b - 1]
            b -= 1
        out_columns[b] = col


@njit(cache=True)
def orient_agents(heights, nbr, columns, frames) -> None:
    """Choose each agent's frame (see the module docstring) and write it into ``frames``."""
    for a in range(columns.shape[0]):
        c = columns[a]
        lowest = 0
        for s in range(1, 4):
            if heights[nbr[c, s]] < heights[nbr[c, lowest]]:
                lowest = s
        first_side = 2 if lowest < 2 else 0
        side = first_side if heights[nbr[c, first_side]] <= heights[nbr[c, first_side + 1]] else first_side + 1
        frames[a, 0] = lowest
        frames[a, 1] = lowest ^ 1  # slots come in opposite pairs (0, 1) and (2, 3)
        frames[a, 2] = side
        frames[a, 3] = side ^ 1


@njit(cache=True)
def write_patch(heights, nbr, c, frame, radius, out, k) -> int:
    """Write the ``(2r+1)^2`` relative heights around column ``c`` in the agent frame ``frame``
    into ``out[k:]`` (local-x-major) and return the next free index. The patch is walked through
    the neighbour table along the agent's axes."""
    h0 = heights[c]
    along_u, back_u, along_v, back_v = frame[0], frame[1], frame[2], frame[3]
    row = c
    for _ in range(radius):
        row = nbr[row, back_u]
    for _ in range(2 * radius + 1):
        col = row
        for _ in range(radius):
            col = nbr[col, back_v]
        for _ in range(2 * radius + 1):
            rel = heights[col] - h0
            out[k] = min(max(rel, -HEIGHT_CLIP), HEIGHT_CLIP) / HEIGHT_CLIP
            k += 1
            col = nbr[col, along_v]
        row = nbr[row, along_u]
    return k


@njit(cache=True)
def observe(heights, rates, tree, counters, nbr, geom, columns, frames, radius, episode_fraction, obs) -> None:
    """Orient the agents, then fill ``obs`` (layout in the module docstring).

    O(n_swarm * patch).
    """
    orient_agents(heights, nbr, columns, frames)
    nz = geom[2]
    n_cols = heights.shape[0]
    mean_h = counters[SUM_H] / n_cols
    k = 0
    agent_rate = 0.0
    for a in range(columns.shape[0]):
        c = columns[a]
        h0 = heights[c]
        k = write_patch(heights, nbr, c, frames[a], radius, obs, k)
        obs[k] = h0 / nz
        obs[k + 1] = min(max(h0 - mean_h, -HEIGHT_CLIP), HEIGHT_CLIP) / HEIGHT_CLIP
        k += 2
        for s in range(N_SLOTS):
            agent_rate += rates[c, s]
    variance = max(0.0, counters[SUM_H2] / n_cols - mean_h * mean_h)
    obs[k] = counters[N_COVERED] / n_cols
    obs[k + 1] = min(np.sqrt(variance) / HEIGHT_CLIP, 1.0)
    obs[k + 2] = mean_h / nz
    obs[k + 3] = min(episode_fraction, 1.0)
    obs[k + 4] = min(agent_rate / tree[1], 1.0) if tree[1] > 0.0 else 0.0


@njit(cache=True)
def to_absolute_biases(frames, local_biases, out) -> None:
    """Biases per absolute event slot from biases given in the agents' frames."""
    for a in range(frames.shape[0]):
        for direction in range(4):
            out[a, frames[a, direction]] = local_biases[a, direction]
        out[a, 4] = local_biases[a, 4]


@njit(cache=True)
def fixed_agents_step(
    heights, rates, bexp, tree, counters, clock, nbr, geom, phys,
    columns, frames, local_biases, n_events, event_rng, swarm_rng, radius, episode_fraction, obs,
):  # fmt: skip
    """Run ``n_events`` events under the agents' biases, re-place the agents, observe.

    ``local_biases[a]`` are in agent ``a``'s frame. Returns ``(executed, ess_sum)`` from
    ``run_biased_events``; ``columns``, ``frames`` and ``obs`` are overwritten with the next
    step's agents, frames and observation.
    """
    biases = np.empty_like(local_biases)
    to_absolute_biases(frames, local_biases, biases)
    set_biases(rates, bexp, tree, columns, biases, geom)
    done, ess_sum = run_biased_events(
        heights, rates, bexp, tree, counters, clock, nbr, geom, phys, columns, n_events, event_rng
    )
    clear_biases(rates, bexp, tree, columns, geom)
    place_agents(rates, bexp, tree, geom, swarm_rng, columns)
    observe(heights, rates, tree, counters, nbr, geom, columns, frames, radius, episode_fraction, obs)
    return done, ess_sum


def split_observation(obs: np.ndarray, n_swarm: int, patch_radius: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Views of an observation (or a batch ``[..., n_obs]``) as its three parts.

    Returns ``patches [..., n_swarm, 2r+1, 2r+1]`` (relative heights / 3 in each agent's frame,
    indexed ``[u, v]``),
    ``agent_features [..., n_swarm, 2]`` and ``global_features [..., 5]``.
    """
    side = 2 * patch_radius + 1
    per_agent = side * side + N_AGENT_EXTRAS
    obs = np.asarray(obs)
    if obs.shape[-1] != observation_size(n_swarm, patch_radius):
        raise ValueError(
            f"obs: expected a last dimension of {observation_size(n_swarm, patch_radius)} for n_swarm={n_swarm}, "
            f"patch_radius={patch_radius}, got {obs.shape[-1]}"
        )
    agents = obs[..., : n_swarm * per_agent].reshape(*obs.shape[:-1], n_swarm, per_agent)
    patches = agents[..., : side * side].reshape(*obs.shape[:-1], n_swarm, side, side)
    return patches, agents[..., side * side :], obs[..., n_swarm * per_agent :]
