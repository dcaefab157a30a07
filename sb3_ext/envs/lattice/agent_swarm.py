"""Compiled step of ``LatticeSwarm-v0``: agents that cover the lattice, each with its own view and
its own reward term.

**Agents.** ``agent_density`` agents per column: at density 1 every column is an agent (no
sampling at all); below 1, ``round(density * N)`` agents are drawn each step on distinct columns
with probability proportional to the column's total rate (``fixed_agents.draw_agent_columns``). Each agent
acts in its own frame (``fixed_agents.orient_agents``) with five biases: hops towards local +x, -x, +y,
-y and deposition on its column.

**Per-agent observation** (float32 in [-1, 1], ``(2r+1)^2 + 2 + N_GLOBALS`` values): the patch of
relative heights around the agent in its frame (``fixed_agents.write_patch``), ``h / nz``,
``clip(h - mean_h, -3, 3) / 3``, then the globals every agent shares: coverage, ``min(W / 3, 1)``,
``mean_h / nz``, the fraction of the episode done and the temperature
``clip((T - 600 K) / 200 K, -1, 1)``, so one policy can serve several temperatures.

**Per-agent reward** (credit assignment). An event ``e`` changes ``N W^2`` by an exact amount
``d_e``: ``2 (h_j - h) + 2`` for a hop from a column at ``h`` to one at ``h_j``, and
``2 (h - mean_h) + 1 - 1/N`` for a deposit on a column at ``h``. Under biases, the expected change
per event is ``E_b[d] = sum_e G_e e^{b_e} d_e / R_b``. With ``dbar = E_0[d]`` (the neutral mean),
agent ``a``'s term

    ``gain_a = -sum_s G_as (e^{b_as} - 1) (d_as - dbar) / R``

sums over the agents to exactly ``-(R_b / R) (E_b[d] - E_0[d])``: the improvement their biases
make to the expected roughening, split among the agents that made it. The ESS pays its share the
same way. With ``x_a = sum_s G_as (e^{b_as} - 1) / R``, ``y_a = sum_s G_as (e^{-b_as} - 1) / R`` and
``x``, ``y`` their sums, ``1 / ESS - 1 = R_b R_-b / R^2 - 1 = x + y + x y`` exactly; agent ``a`` pays
``cost_a = x_a + y_a + (x_a y + y_a x) / 2``, and the shares add up to exactly ``1 / ESS - 1`` (a
separable first-order share alone would charge a bias that every agent applies alike, which
leaves the ESS at 1). The agent's reward is
``n_events * (roughness_gain * gain_a - ess_cost * cost_a)``, computed in the configuration the
step starts from; a zero action earns exactly 0. Every agent's gradient thus comes from its own
term, not from one scalar shared by thousands of agents. At density < 1 ``dbar`` is estimated from
the agents' columns (drawn in proportion to rate, each one's rate-weighted mean ``d`` is an
unbiased draw of ``dbar``).

**Cost.** One step is O(n_agents * patch) for placement, observation and rewards, plus a few
column updates per event: the totals ``R``, ``R_b``, ``R_-b`` that the exact per-event ESS needs are
kept incrementally over the columns an event changes (``fixed_agents.fixed_agents_step`` recomputes them over the
agents for every event, fine for 4 agents, O(N) per event for thousands).
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
    execute_event,
    next_uniform,
    select_event,
    set_biases,
)
from sb3_ext.envs.lattice.fixed_agents import HEIGHT_CLIP, draw_agent_columns, orient_agents, to_absolute_biases, write_patch

N_AGENT_EXTRAS = 2
N_GLOBALS = 5
REFERENCE_TEMPERATURE = 600.0  # K: the temperature feature is 0 here
TEMPERATURE_SCALE = 200.0  # K: the feature is +-1 at 400 K and 800 K


def agent_observation_size(patch_radius: int) -> int:
    """Length of one agent's observation."""
    side = 2 * patch_radius + 1
    return side * side + N_AGENT_EXTRAS + N_GLOBALS


def temperature_feature(temperature: float) -> float:
    return float(np.clip((temperature - REFERENCE_TEMPERATURE) / TEMPERATURE_SCALE, -1.0, 1.0))


@njit(cache=True)
def place_swarm(rates, bexp, tree, geom, rng, every_column, columns) -> None:
    """Every column (in the engine's order) or a rate-proportional draw of ``len(columns)``."""
    if every_column:
        for a in range(columns.shape[0]):
            columns[a] = a
    else:
        draw_agent_columns(rates, bexp, tree, geom, rng, columns)


@njit(cache=True)
def observe_swarm(heights, counters, nbr, geom, columns, frames, radius, episode_fraction, temperature, obs) -> None:
    """Orient the agents, then fill ``obs[a]`` for every agent (layout in the module docstring)."""
    orient_agents(heights, nbr, columns, frames)
    nz = geom[2]
    n_cols = heights.shape[0]
    mean_h = counters[SUM_H] / n_cols
    variance = max(0.0, counters[SUM_H2] / n_cols - mean_h * mean_h)
    coverage = counters[N_COVERED] / n_cols
    roughness = min(np.sqrt(variance) / HEIGHT_CLIP, 1.0)
    for a in range(columns.shape[0]):
        c = columns[a]
        h0 = heights[c]
        k = write_patch(heights, nbr, c, frames[a], radius, obs[a], 0)
        obs[a, k] = h0 / nz
        obs[a, k + 1] = min(max(h0 - mean_h, -HEIGHT_CLIP), HEIGHT_CLIP) / HEIGHT_CLIP
        obs[a, k + 2] = coverage
        obs[a, k + 3] = roughness
        obs[a, k + 4] = mean_h / nz
        obs[a, k + 5] = min(episode_fraction, 1.0)
        obs[a, k + 6] = temperature


@njit(cache=True, inline="always")
def event_width_change(heights, nbr, c, s, mean_h, n_cols) -> float:
    """Exact change of ``N W^2`` if event ``s`` of column ``c`` happened."""
    h = heights[c]
    if s == N_SLOTS - 1:
        return 2.0 * (h - mean_h) + 1.0 - 1.0 / n_cols
    return 2.0 * (heights[nbr[c, s]] - h) + 2.0


@njit(cache=True)
def local_rewards(
    heights, rates, counters, nbr, tree, columns, biases, every_column, roughness_gain, ess_cost, n_events, out
) -> None:
    """Each agent's reward term for the step about to run under ``biases`` (module docstring)."""
    n_cols = heights.shape[0]
    total = tree[1]  # no bias is set yet: the physical total rate R
    if total <= 0.0:
        out[:] = 0.0
        return
    mean_h = counters[SUM_H] / n_cols
    weighted = 0.0
    weight = 0.0
    for a in range(columns.shape[0]):
        c = columns[a]
        column_rate = 0.0
        column_sum = 0.0
        for s in range(N_SLOTS):
            g = rates[c, s]
            if g > 0.0:
                column_rate += g
                column_sum += g * event_width_change(heights, nbr, c, s, mean_h, n_cols)
        if every_column:
            weighted += column_sum
            weight += column_rate
        elif column_rate > 0.0:
            weighted += column_sum / column_rate
            weight += 1.0
    dbar = weighted / weight if weight > 0.0 else 0.0
    # x_a = sum_s G (e^b - 1) / R and y_a = sum_s G (e^-b - 1) / R: then R_b / R = 1 + x and
    # R_-b / R = 1 + y with x, y their sums over the agents, and 1 / ESS - 1 = x + y + x y.
    up_share = np.zeros(columns.shape[0])
    down_share = np.zeros(columns.shape[0])
    for a in range(columns.shape[0]):
        c = columns[a]
        gain = 0.0
        for s in range(N_SLOTS):
            g = rates[c, s]
            if g > 0.0:
                up = np.exp(biases[a, s])
                gain -= g * (up - 1.0) * (event_width_change(heights, nbr, c, s, mean_h, n_cols) - dbar)
                up_share[a] += g * (up - 1.0) / total
                down_share[a] += g * (1.0 / up - 1.0) / total
        out[a] = roughness_gain * gain / total
    x = up_share.sum()
    y = down_share.sum()
    for a in range(columns.shape[0]):
        # agent a's share of x + y + x y: its own terms plus half of each cross term it is part of
        ess_share = up_share[a] + down_share[a] + 0.5 * (up_share[a] * y + down_share[a] * x)
        out[a] = n_events * (out[a] - ess_cost * ess_share)


@njit(cache=True, inline="always")
def _bias_offsets(rates, bexp, c):
    """Column ``c``'s share of ``R - R_b`` and ``R_-b - R_b``."""
    phys = 0.0
    mirror = 0.0
    for s in range(N_SLOTS):
        g = rates[c, s]
        e = bexp[c, s]
        phys += g * (1.0 - e)
        mirror += g * (1.0 / e - e)
    return phys, mirror


@njit(cache=True)
def _touched(nbr, i, slot, out) -> int:
    """The distinct columns whose rates event ``slot`` of column ``i`` can change, into ``out``."""
    n = 0
    j = nbr[i, slot] if slot < N_SLOTS - 1 else i
    for centre in (i, j):
        for s in range(5):
            c = centre if s == 4 else nbr[centre, s]
            seen = False
            for t in range(n):
                if out[t] == c:
                    seen = True
                    break
            if not seen:
                out[n] = c
                n += 1
    return n


@njit(cache=True)
def run_swarm_events(heights, rates, bexp, tree, counters, clock, nbr, geom, phys, columns, n_events, rng):
    """``kernels.run_biased_events`` with the totals kept incrementally (biases already set).

    ``R = R_b + D`` and ``R_-b = R_b + M`` with ``D``, ``M`` summed once over the agents and then
    corrected on the distinct columns each event touches. With zero biases ``D = M = 0`` exactly, so the
    draws are those of plain KMC and every ESS is exactly 1.
    """
    offset_phys = 0.0
    offset_mirror = 0.0
    for a in range(columns.shape[0]):
        p, m = _bias_offsets(rates, bexp, columns[a])
        offset_phys += p
        offset_mirror += m
    dirty = np.empty(10, dtype=np.int64)
    touched = np.empty(10, dtype=np.int64)
    done = 0
    ess_sum = 0.0
    while done < n_events:
        r_bias = tree[1]
        total = r_bias + offset_phys
        if total <= 0.0 or r_bias <= 0.0:
            break
        r_mirror = r_bias + offset_mirror
        ess_sum += (total / r_bias) * (total / r_mirror)
        clock[0] += -np.log(1.0 - next_uniform(rng)) / total
        i, s = select_event(rates, bexp, tree, next_uniform(rng) * r_bias, geom)
        n_touched = _touched(nbr, i, s, touched)
        for t in range(n_touched):
            p, m = _bias_offsets(rates, bexp, touched[t])
            offset_phys -= p
            offset_mirror -= m
        execute_event(heights, rates, bexp, tree, counters, nbr, geom, phys, i, s, dirty)
        for t in range(n_touched):
            p, m = _bias_offsets(rates, bexp, touched[t])
            offset_phys += p
            offset_mirror += m
        done += 1
    return done, ess_sum


@njit(cache=True)
def agent_swarm_step(
    heights, rates, bexp, tree, counters, clock, nbr, geom, phys,
    columns, frames, local_biases, n_events, event_rng, swarm_rng, every_column,
    roughness_gain, ess_cost, radius, episode_fraction, temperature, rewards, obs,
):  # fmt: skip
    """Reward terms, ``n_events`` biased events, new agents and their observations, in one call.

    ``local_biases[a]`` are in agent ``a``'s frame. Returns ``(executed, ess_sum)``; ``columns``,
    ``frames``, ``rewards`` and ``obs`` are overwritten.
    """
    biases = np.empty_like(local_biases)
    to_absolute_biases(frames, local_biases, biases)
    local_rewards(
        heights, rates, counters, nbr, tree, columns, biases, every_column, roughness_gain, ess_cost, n_events, rewards
    )
    set_biases(rates, bexp, tree, columns, biases, geom)
    done, ess_sum = run_swarm_events(
        heights, rates, bexp, tree, counters, clock, nbr, geom, phys, columns, n_events, event_rng
    )
    clear_biases(rates, bexp, tree, columns, geom)
    place_swarm(rates, bexp, tree, geom, swarm_rng, every_column, columns)
    observe_swarm(heights, counters, nbr, geom, columns, frames, radius, episode_fraction, temperature, obs)
    return done, ess_sum
