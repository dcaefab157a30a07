"""KMC engine speed: the numba engine against the same physics written plainly in numpy.

The numpy version is what a first implementation looks like: after every event it recomputes
every rate of the lattice, takes a cumulative sum and searches it. Both grow films from a flat
substrate to half the lattice height, again and again, so both are timed in the same regime
(the mix of deposits and hops changes as a film thickens). Rates are events per second of CPU
time of this (single-threaded) process, so that on a shared machine time spent waiting for a
core is not counted. One process, side by side:

    python benchmarks/bench_lattice_engine.py            # full run
    python benchmarks/bench_lattice_engine.py --quick    # a few seconds
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from sb3_ext.envs.lattice.engine import LatticeKMC
from sb3_ext.envs.lattice.physics import SOSPhysics

SIZES = ((8, 8, 5), (20, 20, 10), (50, 50, 20))


class NumpyRecomputeKMC:
    """BKL KMC that recomputes all rates of the lattice for every event (the baseline)."""

    def __init__(self, nx: int, ny: int, nz: int, physics: SOSPhysics, seed: int) -> None:
        self.nz = nz
        self.table = physics.packed()[:10]
        self.deposition_rate = physics.deposition_rate
        self.rng = np.random.default_rng(seed)
        self.heights = np.zeros((nx, ny), dtype=np.int64)
        self.time = 0.0

    def rates(self) -> np.ndarray:
        h = self.heights
        # neighbour heights towards +x, -x, +y, -y
        neighbours = [np.roll(h, -1, 0), np.roll(h, 1, 0), np.roll(h, -1, 1), np.roll(h, 1, 1)]
        n_bonds = sum((nb >= h).astype(np.int64) for nb in neighbours)
        out = np.empty((*h.shape, 5))
        for d, nb in enumerate(neighbours):
            hop = self.table[2 * n_bonds + (nb + 1 < h)]
            hop[(h == 0) | (nb >= self.nz)] = 0.0
            out[..., d] = hop
        out[..., 4] = np.where(h < self.nz, self.deposition_rate, 0.0)
        return out.reshape(-1)

    def run(self, n_events: int) -> int:
        nx, ny = self.heights.shape
        flat = self.heights.reshape(-1)
        for done in range(n_events):
            cumulative = np.cumsum(self.rates())
            total = cumulative[-1]
            if total <= 0.0:
                return done
            self.time += -np.log(1.0 - self.rng.random()) / total
            event = min(int(np.searchsorted(cumulative, self.rng.random() * total, side="right")), len(cumulative) - 1)
            column, slot = divmod(event, 5)
            if slot == 4:
                flat[column] += 1
            else:
                x, y = divmod(column, ny)
                dx, dy = ((1, 0), (-1, 0), (0, 1), (0, -1))[slot]
                flat[column] -= 1
                flat[((x + dx) % nx) * ny + (y + dy) % ny] += 1
        return n_events


def events_per_film(nx: int, ny: int, nz: int) -> int:
    """Events that grow about nz / 2 monolayers (about 2.5 events per column per monolayer at 600 K)."""
    return int(1.25 * nx * ny * nz)


def measure(make, size: tuple[int, int, int], min_events: int) -> tuple[float, float]:
    """Events per second and mean final roughness over repeated films grown from flat."""
    per_film = events_per_film(*size)
    executed, elapsed, widths, seed = 0, 0.0, [], 0
    while executed < min_events:
        kmc = make(size, seed)
        start = time.process_time()
        executed += kmc.run(per_film)
        elapsed += time.process_time() - start
        h = kmc.heights
        widths.append(float(np.std(h)))
        seed += 1
    return executed / elapsed, float(np.mean(widths))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer events (a few seconds)")
    args = parser.parse_args()
    numba_events = 200_000 if args.quick else 3_000_000
    numpy_events = 1_000 if args.quick else 20_000
    physics = SOSPhysics()

    LatticeKMC(8, 8, 5, physics, seed=0).run(10)  # load the compiled kernels before timing

    rows = []
    for size in SIZES:
        ours, w_ours = measure(lambda s, seed: LatticeKMC(*s, physics, seed=seed), size, numba_events)
        plain, w_plain = measure(lambda s, seed: NumpyRecomputeKMC(*s, physics, seed), size, numpy_events)
        rows.append((size, ours, plain, w_ours, w_plain))

    print(f"KMC events per CPU-second on one core, films grown from flat to nz/2 monolayers ({physics.temperature:.0f} K)")
    print(
        f"{'lattice':>10} | {'numba (ours)':>13} | {'numpy recompute':>15} | {'speed-up':>8} | {'W ours':>6} | {'W numpy':>7}"
    )
    for (nx, ny, nz), ours, plain, w_ours, w_plain in rows:
        print(
            f"{f'{nx}x{ny}x{nz}':>10} | {ours:13,.0f} | {plain:15,.0f} | {ours / plain:7.0f}x | {w_ours:6.3f} | {w_plain:7.3f}"
        )
    slowdown = rows[0][1] / rows[-1][1]
    print(
        f"numba 8x8x5 / 50x50x20 events/s: {slowdown:.2f} (target <= 1.5); "
        f"slowest numba: {min(r[1] for r in rows):,.0f}/s (target >= 500,000)"
    )


if __name__ == "__main__":
    main()
