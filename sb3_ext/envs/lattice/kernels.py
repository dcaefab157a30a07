"""Compiled core of the solid-on-solid KMC engine (numba, nopython, cached on disk).

State is a handful of flat numpy arrays so that one compiled function can serve the engine,
the swarm step of the environment and the tests:

- ``heights``  int64[N]      column heights in the internal column order (see ``column_layout``);
- ``rates``    float64[N, 5] physical rate of each event of each column: slots 0..3 are hops of
  the top atom towards +x, -x, +y, -y, slot 4 is deposition on the column;
- ``bexp``     float64[N, 5] ``exp(bias)`` of each event (1.0 everywhere except on the columns an
  agent is biasing during a swarm step);
- ``tree``     float64[2P]   sum tree over columns, ``P`` a power of two >= N: leaf ``P + i``
  holds ``sum_s rates[i, s] * bexp[i, s]``, node ``k`` holds ``tree[2k] + tree[2k + 1]``, so
  ``tree[1]`` is the total (biased) rate;
- ``counters`` int64[8]      event counts by kind plus running sums of the morphology;
- ``clock``    float64[1]    physical time;
- ``nbr``      int64[N, 4]   neighbour columns (see ``column_layout``);
- ``geom``     int64[4]      ``nx, ny, nz, P``;
- ``phys``     float64[11]   hop rate table ``phys[2 * n + interlayer]`` (n = 0..4 neighbours at
  least as high, interlayer = 1 when the atom lands on another level, up or down) and the
  deposition rate per column at ``phys[10]``;
- ``rng``      uint64[4]     state of an SFC64 stream (see ``next_uniform``).

Every parent node is recomputed from its two children (never updated by adding a difference),
so the tree never drifts from the leaves however long a run is.
"""

from __future__ import annotations

import numpy as np
from numba import njit

# counters layout
N_EVENTS = 0
N_DEPOSITIONS = 1
N_HOPS_LEVEL = 2  # the atom lands at its own level
N_HOPS_DOWN = 3  # the atom steps down (pays the Ehrlich-Schwoebel barrier)
N_HOPS_UP = 4  # the atom climbs onto a column at least as high (pays it too: detailed balance)
SUM_H = 5
SUM_H2 = 6
N_COVERED = 7
N_COUNTERS = 8

DEPOSITION_SLOT = 4
N_SLOTS = 5

_ELEVEN = np.uint64(11)
_THREE = np.uint64(3)
_TWENTY_FOUR = np.uint64(24)
_FORTY = np.uint64(40)
_ONE = np.uint64(1)
_TWO_TO_MINUS_53 = 1.0 / 9007199254740992.0


@njit(cache=True, inline="always")
def next_uniform(rng) -> float:
    """Next double in [0, 1) of the SFC64 stream whose state is ``rng`` (uint64[4]).

    Bit-identical to ``numpy.random.Generator(numpy.random.SFC64(seed)).random()`` started from
    the same state. The state is a plain array rather than a ``Generator`` object because numba
    unboxes a ``Generator`` argument in about 10 microseconds, more than a whole RL step's worth
    of events; an array argument costs a fraction of a microsecond.
    """
    a, b, c, counter = rng[0], rng[1], rng[2], rng[3]
    out = a + b + counter
    rng[3] = counter + _ONE
    rng[0] = b ^ (b >> _ELEVEN)
    rng[1] = c + (c << _THREE)
    rng[2] = ((c << _TWENTY_FOUR) | (c >> _FORTY)) + out
    return float(out >> _ELEVEN) * _TWO_TO_MINUS_53


def column_layout(nx: int, ny: int) -> tuple[np.ndarray, np.ndarray]:
    """Internal column order and neighbour table of a periodic ``nx x ny`` lattice.

    Columns are numbered in Z-order (Morton order, ranked so the numbers are 0..N-1): the
    columns around an event then sit in a few nearby leaves of the sum tree and share most of
    their ancestors, so one event updates few tree nodes even on a large lattice.

    Returns ``order`` (``order[k]`` is the row-major index ``x * ny + y`` of internal column
    ``k``) and ``nbr`` (``nbr[k, s]`` is the internal neighbour of ``k`` towards +x, -x, +y, -y).
    The neighbour table is looked up rather than computed in the kernels, which saves the
    integer divisions of ten rate updates per event.
    """
    x, y = np.divmod(np.arange(nx * ny, dtype=np.int64), ny)
    code = np.zeros(nx * ny, dtype=np.int64)
    for bit in range(16):
        code |= ((x >> bit) & 1) << (2 * bit + 1) | ((y >> bit) & 1) << (2 * bit)
    order = np.argsort(code, kind="stable").astype(np.int64)
    rank = np.empty_like(order)
    rank[order] = np.arange(nx * ny)
    ox, oy = x[order], y[order]
    row_major = [((ox + 1) % nx) * ny + oy, ((ox - 1) % nx) * ny + oy, ox * ny + (oy + 1) % ny, ox * ny + (oy - 1) % ny]
    return order, np.stack([rank[r] for r in row_major], axis=1)


@njit(cache=True)
def compute_column_rates(heights, rates, nbr, i, geom, phys) -> None:
    """Write the physical rates of the five events of column ``i`` into ``rates[i]``."""
    nz = geom[2]
    h = heights[i]
    rates[i, DEPOSITION_SLOT] = phys[10] if h < nz else 0.0
    if h == 0:  # bare substrate: nothing to hop
        for s in range(4):
            rates[i, s] = 0.0
        return
    n_bonds = 0
    for s in range(4):
        if heights[nbr[i, s]] >= h:
            n_bonds += 1
    for s in range(4):
        hj = heights[nbr[i, s]]
        if hj >= nz:  # a full column takes no atom
            rates[i, s] = 0.0
        else:
            interlayer = 0 if hj + 1 == h else 1
            rates[i, s] = phys[2 * n_bonds + interlayer]


@njit(cache=True, inline="always")
def leaf_value(rates, bexp, i: int) -> float:
    total = 0.0
    for s in range(N_SLOTS):
        total += rates[i, s] * bexp[i, s]
    return total


@njit(cache=True)
def tree_set(tree, leaf_offset: int, i: int, value: float) -> None:
    k = leaf_offset + i
    tree[k] = value
    k >>= 1
    while k >= 1:
        tree[k] = tree[2 * k] + tree[2 * k + 1]
        k >>= 1


@njit(cache=True)
def refresh_leaf(rates, bexp, tree, i, geom) -> None:
    """Recompute the tree leaf of column ``i`` from its rates and biases (rates unchanged)."""
    tree_set(tree, geom[3], i, leaf_value(rates, bexp, i))


@njit(cache=True)
def rebuild(heights, rates, bexp, tree, counters, nbr, geom, phys) -> None:
    """Recompute every rate, the whole tree and the morphology sums from the heights."""
    n_cols = heights.shape[0]
    leaf_offset = geom[3]
    tree[:] = 0.0
    for i in range(n_cols):
        compute_column_rates(heights, rates, nbr, i, geom, phys)
        tree[leaf_offset + i] = leaf_value(rates, bexp, i)
    for k in range(leaf_offset - 1, 0, -1):
        tree[k] = tree[2 * k] + tree[2 * k + 1]
    sum_h = 0
    sum_h2 = 0
    covered = 0
    for i in range(n_cols):
        h = heights[i]
        sum_h += h
        sum_h2 += h * h
        if h > 0:
            covered += 1
    counters[SUM_H] = sum_h
    counters[SUM_H2] = sum_h2
    counters[N_COVERED] = covered


@njit(cache=True)
def select_event(rates, bexp, tree, u: float, geom):
    """Column and slot of the event that the uniform ``u`` in [0, tree[1]) falls on.

    Walks down the tree; a subtree of total zero is never entered, so rounding at a boundary
    cannot land on a column without events.
    """
    leaf_offset = geom[3]
    k = 1
    while k < leaf_offset:
        left = 2 * k
        if u < tree[left] or tree[left + 1] <= 0.0:
            k = left
        else:
            u -= tree[left]
            k = left + 1
    i = k - leaf_offset
    last = -1
    for s in range(N_SLOTS):
        w = rates[i, s] * bexp[i, s]
        if w > 0.0:
            if u < w:
                return i, s
            u -= w
            last = s
    return i, last


@njit(cache=True)
def refresh_columns(heights, rates, bexp, tree, nbr, geom, phys, dirty, n_dirty) -> None:
    """Recompute the rates and leaves of ``dirty[:n_dirty]``, then their ancestors once each.

    The columns around one event share most of their ancestors; walking up level by level and
    skipping repeats updates each shared node once instead of once per column. ``dirty`` is
    scratch space and is overwritten. Repeated columns are harmless.
    """
    leaf_offset = geom[3]
    for t in range(n_dirty):
        i = dirty[t]
        compute_column_rates(heights, rates, nbr, i, geom, phys)
        tree[leaf_offset + i] = leaf_value(rates, bexp, i)
        dirty[t] = (leaf_offset + i) >> 1
    while True:
        n_unique = 0
        for t in range(n_dirty):
            k = dirty[t]
            seen = False
            for q in range(n_unique):
                if dirty[q] == k:
                    seen = True
                    break
            if not seen:
                dirty[n_unique] = k
                n_unique += 1
                tree[k] = tree[2 * k] + tree[2 * k + 1]
        n_dirty = n_unique
        if dirty[0] <= 1:  # every entry is at the same depth: this was the root
            return
        for t in range(n_dirty):
            dirty[t] >>= 1


@njit(cache=True)
def execute_event(heights, rates, bexp, tree, counters, nbr, geom, phys, i, slot, dirty) -> None:
    """Apply event ``slot`` of column ``i`` and refresh only the columns whose rates it changes:
    the column(s) whose height changed and their 4 neighbours. ``dirty`` is int64[10] scratch."""
    counters[N_EVENTS] += 1
    h = heights[i]
    for s in range(4):
        dirty[s] = nbr[i, s]
    dirty[4] = i
    if slot == DEPOSITION_SLOT:
        heights[i] = h + 1
        counters[N_DEPOSITIONS] += 1
        counters[SUM_H] += 1
        counters[SUM_H2] += 2 * h + 1
        if h == 0:
            counters[N_COVERED] += 1
        refresh_columns(heights, rates, bexp, tree, nbr, geom, phys, dirty, 5)
        return
    j = nbr[i, slot]
    hj = heights[j]
    landing = hj + 1
    if landing < h:
        counters[N_HOPS_DOWN] += 1
    elif landing == h:
        counters[N_HOPS_LEVEL] += 1
    else:
        counters[N_HOPS_UP] += 1
    heights[i] = h - 1
    heights[j] = landing
    counters[SUM_H2] += 2 * (hj - h) + 2
    if h == 1:
        counters[N_COVERED] -= 1
    if hj == 0:
        counters[N_COVERED] += 1
    for s in range(4):
        dirty[5 + s] = nbr[j, s]
    dirty[9] = j
    refresh_columns(heights, rates, bexp, tree, nbr, geom, phys, dirty, 10)


@njit(cache=True)
def run_events(heights, rates, bexp, tree, counters, clock, nbr, geom, phys, n_events, t_stop, rng):
    """Run up to ``n_events`` unbiased BKL events, stopping at physical time ``t_stop``.

    The waiting time is drawn first: if it would pass ``t_stop`` the clock is set to ``t_stop``
    and no event happens, which is exact because the waiting time is memoryless. Stops early
    when the total rate is zero (every column full). Returns the number of events executed.
    """
    dirty = np.empty(10, dtype=np.int64)
    done = 0
    while done < n_events:
        total = tree[1]
        if total <= 0.0:
            break
        dt = -np.log(1.0 - next_uniform(rng)) / total
        if clock[0] + dt > t_stop:
            clock[0] = t_stop
            break
        clock[0] += dt
        i, s = select_event(rates, bexp, tree, next_uniform(rng) * total, geom)
        execute_event(heights, rates, bexp, tree, counters, nbr, geom, phys, i, s, dirty)
        done += 1
    return done


@njit(cache=True)
def set_biases(rates, bexp, tree, columns, biases, geom) -> None:
    """Put ``exp(biases[a])`` on the five events of ``columns[a]`` (columns must be distinct)."""
    for a in range(columns.shape[0]):
        c = columns[a]
        for s in range(N_SLOTS):
            bexp[c, s] = np.exp(biases[a, s])
        refresh_leaf(rates, bexp, tree, c, geom)


@njit(cache=True)
def clear_biases(rates, bexp, tree, columns, geom) -> None:
    for a in range(columns.shape[0]):
        c = columns[a]
        for s in range(N_SLOTS):
            bexp[c, s] = 1.0
        refresh_leaf(rates, bexp, tree, c, geom)


@njit(cache=True)
def biased_totals(rates, bexp, tree, columns):
    """Physical total ``R``, biased ``R_b = sum G e^b`` and mirrored ``R_-b = sum G e^-b``.

    Only the biased columns differ between the three, so this costs O(len(columns)). ``R`` is
    formed as ``R_b + (A - A_b)``: with zero biases ``A == A_b`` exactly, so ``R == R_b`` to
    the bit and a neutral biased run reproduces the unbiased one.
    """
    a_phys = 0.0
    a_bias = 0.0
    a_mirror = 0.0
    for a in range(columns.shape[0]):
        c = columns[a]
        for s in range(N_SLOTS):
            g = rates[c, s]
            a_phys += g
            a_bias += g * bexp[c, s]
            a_mirror += g / bexp[c, s]
    r_bias = tree[1]
    return r_bias + (a_phys - a_bias), r_bias, r_bias + (a_mirror - a_bias)


@njit(cache=True)
def run_biased_events(heights, rates, bexp, tree, counters, clock, nbr, geom, phys, columns, n_events, rng):
    """Run up to ``n_events`` events drawn from ``P(e) ~ G_e exp(b_e)`` (biases already set).

    Returns ``(executed, ess_sum)`` where ``ess_sum`` adds the exact per-event ESS
    ``R^2 / (R_b R_-b)`` of the state each event was drawn in. The clock advances with the
    physical total rate ``R``: a bias changes which event happens, not how fast the lattice
    evolves. Draw order (waiting time, then selection) matches ``run_events``.
    """
    dirty = np.empty(10, dtype=np.int64)
    done = 0
    ess_sum = 0.0
    while done < n_events:
        total, r_bias, r_mirror = biased_totals(rates, bexp, tree, columns)
        if total <= 0.0:
            break
        ess_sum += (total / r_bias) * (total / r_mirror)
        clock[0] += -np.log(1.0 - next_uniform(rng)) / total
        i, s = select_event(rates, bexp, tree, next_uniform(rng) * r_bias, geom)
        execute_event(heights, rates, bexp, tree, counters, nbr, geom, phys, i, s, dirty)
        done += 1
    return done, ess_sum


@njit(cache=True)
def sample_events(rates, bexp, tree, geom, n_draws, rng, out_columns, out_slots, out_dts):
    """Draw ``n_draws`` events in the current (frozen) configuration without executing them."""
    total = tree[1]
    for k in range(n_draws):
        out_dts[k] = -np.log(1.0 - next_uniform(rng)) / total
        i, s = select_event(rates, bexp, tree, next_uniform(rng) * total, geom)
        out_columns[k] = i
        out_slots[k] = s
