"""Streaming an offline dataset into an SB3 replay buffer: speed and memory, ours vs ``buffer.add``.

Records (once) ``--transitions`` Pendulum-v1 transitions of a random policy and re-chunks them
with ``ChunkWriter`` for each further chunk size. Then, for each chunk size and each mode, a fresh
process (so that its peak-RSS counter starts clean) fills a ``ReplayBuffer`` of that capacity with:

* ``load_chunks``            (sha256 of every chunk checked first, then slice writes);
* ``load_chunks verify=F``   (slice writes only);
* ``buffer.add`` loop        (SB3's own per-transition API over the same chunks: the counterpart).

Rates are given in wall time and in process CPU time (the steadier figure on a shared machine).
Memory beyond the buffer = peak RSS during the load - (RSS before + the buffer's array bytes),
reported next to the size of one chunk in memory.

    nice -n 10 python benchmarks/bench_offline_stream.py                 # 1M transitions
    nice -n 10 python benchmarks/bench_offline_stream.py --quick         # 100k transitions
    nice -n 10 python benchmarks/bench_offline_stream.py --data DIR      # keep/reuse the datasets in DIR
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from stable_baselines3.common.buffers import ReplayBuffer

from sb3_ext.data import ChunkWriter, SyntheticDatasetBuilder, iter_chunks, load_chunks, read_manifest

ENV_ID = "Pendulum-v1"
MODES = ("load_chunks", "load_chunks verify=F", "buffer.add loop")


def status_kib(field: str) -> int:
    """A memory figure of this process from /proc/self/status (Linux), in KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def measure(mode: str, dataset: Path) -> dict[str, float]:
    """Run one load in this (fresh) process; returns seconds and memory figures in bytes."""
    manifest = read_manifest(dataset)
    buffer = ReplayBuffer(manifest["n_transitions"], manifest["observation_space"], manifest["action_space"])
    buffer_bytes = sum(getattr(buffer, name).nbytes for name in
                       ("observations", "next_observations", "actions", "rewards", "dones", "timeouts"))
    # Reset the peak-RSS counter to the current RSS (Linux >= 4.0), so VmHWM measures this load only.
    Path("/proc/self/clear_refs").write_text("5")
    rss_before = status_kib("VmRSS") * 1024
    start, cpu_start = time.perf_counter(), time.process_time()
    if mode == "buffer.add loop":
        low, high = manifest["action_space"].low, manifest["action_space"].high
        for chunk in iter_chunks(dataset, verify=False):
            scaled = 2.0 * (chunk["actions"] - low) / (high - low) - 1.0
            for i in range(len(chunk["rewards"])):
                buffer.add(chunk["observations"][i], chunk["next_observations"][i], scaled[i],
                           chunk["rewards"][i : i + 1], chunk["dones"][i : i + 1],
                           [{"TimeLimit.truncated": bool(chunk["timeouts"][i])}])
            del chunk, scaled  # as load_chunks does: one chunk in memory at a time
    else:
        load_chunks(buffer, dataset, verify=mode == "load_chunks")
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    assert buffer.full or buffer.pos == manifest["n_transitions"]
    return {
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "beyond_buffer": status_kib("VmHWM") * 1024 - rss_before - buffer_bytes,
        "buffer_bytes": buffer_bytes,
    }


def chunk_bytes(dataset: Path) -> int:
    """Bytes of one full chunk's arrays in memory."""
    first = next(iter_chunks(dataset, verify=False))
    return sum(values.nbytes for values in first.values())


def build(root: Path, n_transitions: int, chunk_size: int, source: Path | None = None) -> Path:
    """Record the dataset with this chunk size, or re-chunk ``source`` (same transitions) if given."""
    directory = root / f"pendulum-random-{n_transitions}-c{chunk_size}"
    if (directory / "manifest.json").is_file() and read_manifest(directory)["n_transitions"] == n_transitions:
        return directory
    start = time.perf_counter()
    if source is None:
        SyntheticDatasetBuilder(ENV_ID, "random", n_transitions=n_transitions, version=directory.name,
                                chunk_size=chunk_size, seed=0, root=root, overwrite=True).build()
    else:
        manifest = read_manifest(source)
        with ChunkWriter(directory, manifest["observation_space"], manifest["action_space"], chunk_size=chunk_size,
                         env_id=ENV_ID, provenance={"rechunked_from": source.name}, overwrite=True) as writer:
            for chunk in iter_chunks(source):
                writer.add(**chunk)
    print(f"wrote {directory.name} in {time.perf_counter() - start:.0f} s", flush=True)
    return directory


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--transitions", type=int, default=1_000_000)
    parser.add_argument("--chunk-sizes", type=int, nargs="+", default=[10_000, 50_000, 200_000])
    parser.add_argument("--data", type=Path, default=None, help="directory to keep the datasets in (default: temporary)")
    parser.add_argument("--quick", action="store_true", help="100k transitions, one chunk size")
    parser.add_argument("--measure", choices=MODES, help=argparse.SUPPRESS)
    parser.add_argument("--dataset", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:  # child process
        print(json.dumps(measure(args.measure, args.dataset)))
        return

    n_transitions = 100_000 if args.quick else args.transitions
    chunk_sizes = [10_000] if args.quick else args.chunk_sizes
    with tempfile.TemporaryDirectory() as scratch:
        root = args.data or Path(scratch)
        print(f"{n_transitions} {ENV_ID} transitions into a ReplayBuffer of the same capacity")
        print(f"{'chunk size':>10} {'chunk MB':>8} | {'mode':<21} {'wall transitions/s':>18} {'cpu transitions/s':>17} "
              f"{'x add() (cpu)':>13} {'MB beyond buffer':>16} {'chunks':>7}")
        first = None
        for chunk_size in chunk_sizes:
            dataset = build(root, n_transitions, chunk_size, source=first)
            first = first or dataset
            one_chunk = chunk_bytes(dataset)
            results = {}
            for mode in MODES:
                child = subprocess.run(
                    [sys.executable, __file__, "--measure", mode, "--dataset", str(dataset)],
                    capture_output=True, text=True, check=True,
                )
                results[mode] = json.loads(child.stdout.strip().splitlines()[-1])
            baseline = n_transitions / results["buffer.add loop"]["cpu_seconds"]
            for mode, result in results.items():
                rate, cpu_rate = n_transitions / result["seconds"], n_transitions / result["cpu_seconds"]
                print(f"{chunk_size:>10} {one_chunk / 1e6:>8.2f} | {mode:<21} {rate:>18,.0f} {cpu_rate:>17,.0f} "
                      f"{cpu_rate / baseline:>13.1f} {result['beyond_buffer'] / 1e6:>16.2f} "
                      f"{result['beyond_buffer'] / one_chunk:>7.2f}", flush=True)
        print(f"buffer arrays: {results['load_chunks']['buffer_bytes'] / 1e6:.1f} MB; "
              "'chunks' = memory beyond the buffer in units of one chunk")


if __name__ == "__main__":
    main()
