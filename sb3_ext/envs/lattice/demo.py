"""Grow a film with plain KMC (no RL) and print its morphology: ``python -m sb3_ext.envs.lattice.demo``.

Shows what the curriculum's world looks like at the stage-1 temperature: the height map after
each monolayer, roughness and coverage, the mix of event kinds, and the engine's speed.
"""

from __future__ import annotations

import argparse
import time

from sb3_ext.envs.lattice.engine import LatticeKMC
from sb3_ext.envs.lattice.physics import SOSPhysics
from sb3_ext.envs.lattice.render import ascii_heights


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, nargs=3, default=[24, 24, 9], metavar=("NX", "NY", "NZ"))
    parser.add_argument("--monolayers", type=int, default=3, help="film thickness to grow")
    parser.add_argument("--temperature", type=float, default=600.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.monolayers >= args.size[2]:
        parser.error(f"--monolayers: expected fewer than nz = {args.size[2]} monolayers, got {args.monolayers}")
    try:
        nx, ny, nz = args.size
        engine = LatticeKMC(nx, ny, nz, SOSPhysics(temperature=args.temperature), seed=args.seed)
    except ValueError as error:
        parser.error(str(error))

    print(f"SOS growth on {'x'.join(map(str, args.size))} at {args.temperature:.0f} K, 1 ML/s (digits/shades = height)")
    start = time.perf_counter()
    for layer in range(1, args.monolayers + 1):
        engine.run_until(float(layer))  # 1 ML/s: one monolayer per second of physical time
        print(
            f"\nt = {engine.time:.1f} s: mean height {engine.mean_height:.2f} ML, "
            f"roughness W = {engine.roughness:.3f}, coverage {engine.coverage:.3f}"
        )
        print(ascii_heights(engine.heights, engine.nz))
    elapsed = time.perf_counter() - start
    counts = engine.event_counts
    print("\nevents: " + ", ".join(f"{kind} {n:,}" for kind, n in counts.items()))
    print(f"{engine.n_events:,} events in {elapsed:.2f} s of wall time (compilation included on a first run)")


if __name__ == "__main__":
    main()
