"""Rejection-free kinetic Monte Carlo (BKL / n-fold way) for solid-on-solid thin-film growth.

``LatticeKMC`` is usable without any RL: build it, ``run`` events or ``run_until`` a time, read
heights, morphology, clock and event counts. The heavy lifting is in ``kernels`` (numba):

- rates are kept per event and updated incrementally: an event only changes the height of one
  or two columns, so only those columns and their 4 neighbours are recomputed;
- selection walks a sum tree over columns, O(log N) per event, and the clock advances by
  ``-ln(u) / R``;
- randomness comes from an SFC64 stream kept as four uint64 words and advanced inside the
  compiled code; it is numpy's own ``SFC64`` generator (same seeding, same doubles as
  ``Generator(SFC64(seed)).random()``), so the same seed replays a run bit for bit.

Heights live in ``0..nz``. A column at ``nz`` takes no deposit and no hop onto it. When every
column is full the total rate is zero: ``run``/``run_until`` stop early and ``is_full`` is True.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import numpy as np

from sb3_ext.envs.lattice import kernels as K
from sb3_ext.envs.lattice.physics import SOSPhysics

EVENT_KINDS = ("deposition", "hop_level", "hop_down", "hop_up")
_KIND_COUNTERS = (K.N_DEPOSITIONS, K.N_HOPS_LEVEL, K.N_HOPS_DOWN, K.N_HOPS_UP)
#: Largest total event rate (1/s) a lattice may have: its square must stay far from overflow.
MAX_TOTAL_RATE = 1e100


SeedLike = int | np.integer | np.random.SeedSequence | np.random.Generator | None


def stream_state(seed: SeedLike) -> np.ndarray:
    """The uint64[4] state that ``numpy.random.SFC64(seed)`` starts from (see ``kernels.next_uniform``)."""
    if isinstance(seed, np.random.Generator):
        seed = int(seed.integers(0, 2**63))
    return np.array(np.random.SFC64(seed).state["state"]["state"], dtype=np.uint64)


def _check_size(name: str, value: object) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < 3:
        raise ValueError(f"{name}: expected an integer >= 3, got {value!r}")
    return int(value)


class LatticeKMC:
    """Periodic ``nx x ny`` SOS lattice with heights capped at ``nz``, evolved by BKL KMC.

    :param nx, ny, nz: lattice size (each an int >= 3).
    :param physics: rate parameters; defaults to ``SOSPhysics()`` (600 K, 1 ML/s, the default barriers).
    :param seed: anything ``numpy.random.SFC64`` accepts (int, ``SeedSequence``, ``None`` for fresh
        entropy), or a ``numpy.random.Generator`` from which a seed is drawn.
    """

    def __init__(
        self,
        nx: int,
        ny: int,
        nz: int,
        physics: SOSPhysics | None = None,
        seed: SeedLike = None,
    ) -> None:
        self.nx, self.ny, self.nz = _check_size("nx", nx), _check_size("ny", ny), _check_size("nz", nz)
        self.physics = physics if physics is not None else SOSPhysics()
        self.rng = stream_state(seed)
        n_cols = self.nx * self.ny
        leaf_offset = 1 << max(0, (n_cols - 1).bit_length())
        # Kernels number columns in Z-order; the public API speaks row-major ``x * ny + y``.
        self.order, self.nbr = K.column_layout(self.nx, self.ny)
        self.rank = np.empty_like(self.order)
        self.rank[self.order] = np.arange(n_cols)
        self.geom = np.array([self.nx, self.ny, self.nz, leaf_offset], dtype=np.int64)
        self.phys = self.physics.packed()
        # Rates add up in the sum tree and are squared in the ESS: a total beyond this (e.g.
        # deposition_rate=1e308) would turn into inf, then NaN times, ESS and observations.
        max_total = n_cols * (4.0 * float(self.phys[:-1].max()) + float(self.phys[-1]))
        if not max_total <= MAX_TOTAL_RATE:
            raise ValueError(
                f"physics: the total event rate of a {self.nx}x{self.ny} lattice could reach {max_total:g}/s, "
                f"more than {MAX_TOTAL_RATE:g}/s; lower deposition_rate or nu"
            )
        self.column_heights = np.zeros(n_cols, dtype=np.int64)  # internal order
        self.rates = np.zeros((n_cols, K.N_SLOTS), dtype=np.float64)
        self.bexp = np.ones((n_cols, K.N_SLOTS), dtype=np.float64)
        self.tree = np.zeros(2 * leaf_offset, dtype=np.float64)
        self.counters = np.zeros(K.N_COUNTERS, dtype=np.int64)
        self.clock = np.zeros(1, dtype=np.float64)
        self.reset()

    # ---------------------------------------------------------------- state
    def reset(self, heights: np.ndarray | None = None) -> None:
        """Start again from a flat substrate (or from ``heights``), at time 0 with no events."""
        if heights is None:
            self.column_heights[:] = 0
        else:
            h = np.asarray(heights)
            if h.shape != (self.nx, self.ny) or not np.issubdtype(h.dtype, np.integer):
                raise ValueError(f"heights: expected an integer array of shape {(self.nx, self.ny)}, got {h.dtype} {h.shape}")
            if h.min() < 0 or h.max() > self.nz:
                raise ValueError(f"heights: expected values in 0..{self.nz}, got {h.min()}..{h.max()}")
            self.column_heights[:] = h.reshape(-1)[self.order]
        self.counters[:] = 0
        self.clock[0] = 0.0
        self.bexp[:] = 1.0
        K.rebuild(self.column_heights, self.rates, self.bexp, self.tree, self.counters, self.nbr, self.geom, self.phys)

    def reseed(self, seed: SeedLike) -> None:
        """Restart the random stream (the lattice is left as it is)."""
        self.rng = stream_state(seed)

    def kernel_state(self) -> tuple:
        """The arrays the compiled kernels work on, in their argument order."""
        return self.column_heights, self.rates, self.bexp, self.tree, self.counters, self.clock, self.nbr, self.geom, self.phys

    # ---------------------------------------------------------------- dynamics
    def run(self, n_events: int) -> int:
        """Execute ``n_events`` events (fewer only if the lattice fills); returns how many ran."""
        return int(K.run_events(*self.kernel_state(), int(n_events), np.inf, self.rng))

    def run_until(self, time: float) -> int:
        """Execute events until the clock reaches ``time`` (the clock is then exactly ``time``)."""
        if isinstance(time, (bool, np.bool_)) or not isinstance(time, numbers.Real) or not math.isfinite(time):
            raise ValueError(f"time: expected a finite number of seconds, got {time!r} (use run(n_events) to run until full)")
        return int(K.run_events(*self.kernel_state(), np.iinfo(np.int64).max, float(time), self.rng))

    def _columns_and_biases(self, columns: Sequence[int] | np.ndarray, biases: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Validate public (row-major) columns and return them in internal order with the biases."""
        cols = np.asarray(columns, dtype=np.int64).reshape(-1)
        b = np.ascontiguousarray(biases, dtype=np.float64).reshape(len(cols), K.N_SLOTS)
        n_cols = self.column_heights.size
        if len(np.unique(cols)) != len(cols) or cols.min(initial=0) < 0 or cols.max(initial=0) >= n_cols:
            raise ValueError(f"columns: expected distinct flat column indices x * ny + y in 0..{n_cols - 1}, got {cols}")
        if not np.all(np.isfinite(b)):
            raise ValueError("biases: expected finite values")
        return self.rank[cols], b

    def biased_step(self, columns: Sequence[int] | np.ndarray, biases: np.ndarray, n_events: int = 1) -> tuple[int, float]:
        """Run ``n_events`` events drawn from ``P(e) ~ rate_e * exp(b_e)``.

        ``columns`` are flat indices ``x * ny + y``; ``biases[a]`` holds the biases of the hops of
        ``columns[a]`` towards +x, -x, +y, -y and of deposition on it. All other events keep
        ``b = 0``. Returns ``(executed, mean ESS)``, the ESS of each event being the exact
        ``R^2 / (R_b R_-b)`` of the configuration it was drawn from.
        """
        cols, b = self._columns_and_biases(columns, biases)
        K.set_biases(self.rates, self.bexp, self.tree, cols, b, self.geom)
        try:
            done, ess_sum = K.run_biased_events(*self.kernel_state(), cols, int(n_events), self.rng)
        finally:
            K.clear_biases(self.rates, self.bexp, self.tree, cols, self.geom)
        return int(done), (ess_sum / done if done else 1.0)

    def sample_events(
        self, n_draws: int, columns: Sequence[int] | np.ndarray = (), biases: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Draw events in the current, frozen configuration without executing them.

        Returns flat column indices, slots (0..3 hops +x, -x, +y, -y; 4 deposition) and waiting
        times ``-ln(u) / R_b`` (``R_b = R`` without biases). Optional biases as in ``biased_step``.
        """
        if self.total_rate <= 0.0:
            raise ValueError("sample_events: the lattice is full, no event can happen")
        cols, b = self._columns_and_biases(columns, np.zeros((len(columns), K.N_SLOTS)) if biases is None else biases)
        out_cols = np.empty(n_draws, dtype=np.int64)
        out_slots = np.empty(n_draws, dtype=np.int64)
        out_dts = np.empty(n_draws, dtype=np.float64)
        K.set_biases(self.rates, self.bexp, self.tree, cols, b, self.geom)
        try:
            K.sample_events(self.rates, self.bexp, self.tree, self.geom, int(n_draws), self.rng, out_cols, out_slots, out_dts)
        finally:
            K.clear_biases(self.rates, self.bexp, self.tree, cols, self.geom)
        return self.order[out_cols], out_slots, out_dts

    # ---------------------------------------------------------------- observables
    @property
    def heights(self) -> np.ndarray:
        """A copy of the heights, shape ``(nx, ny)``."""
        flat = np.empty_like(self.column_heights)
        flat[self.order] = self.column_heights
        return flat.reshape(self.nx, self.ny)

    @property
    def event_rates(self) -> np.ndarray:
        """A copy of the incrementally kept physical rates, shape ``(nx, ny, 5)``."""
        flat = np.empty_like(self.rates)
        flat[self.order] = self.rates
        return flat.reshape(self.nx, self.ny, K.N_SLOTS)

    @property
    def total_rate(self) -> float:
        """Total physical rate ``R`` of every event on the lattice (no bias is active between calls)."""
        return float(self.tree[1])

    @property
    def time(self) -> float:
        return float(self.clock[0])

    @property
    def n_events(self) -> int:
        return int(self.counters[K.N_EVENTS])

    @property
    def event_counts(self) -> dict[str, int]:
        """Events executed since the last reset, by kind (hops split by the landing level)."""
        return {kind: int(self.counters[c]) for kind, c in zip(EVENT_KINDS, _KIND_COUNTERS, strict=False)}

    @property
    def mean_height(self) -> float:
        return float(self.counters[K.SUM_H]) / self.column_heights.size

    @property
    def roughness(self) -> float:
        """``W = std(h)`` from exact integer running sums (O(1))."""
        return roughness_from_sums(int(self.counters[K.SUM_H]), int(self.counters[K.SUM_H2]), self.column_heights.size)

    @property
    def coverage(self) -> float:
        """Fraction of columns with ``h > 0`` (O(1), kept as a running count)."""
        return float(self.counters[K.N_COVERED]) / self.column_heights.size

    @property
    def is_full(self) -> bool:
        return int(self.counters[K.SUM_H]) == self.column_heights.size * self.nz


def roughness_from_sums(sum_h: int, sum_h2: int, n_cols: int) -> float:
    """Population standard deviation of the heights from ``sum h`` and ``sum h^2``."""
    mean = sum_h / n_cols
    return float(np.sqrt(max(0.0, sum_h2 / n_cols - mean * mean)))
