"""rl-zoo3 integration: command overhead against plain rl-zoo3, and search throughput per worker count.

Side by side in one run:

1. start-to-exit wall time of the same tiny training through ``python -m rl_zoo3.train`` and
   ``python -m sb3_ext.train`` (PPO on CartPole-v1, rl-zoo3's own hyperparameters), median of
   ``--repeats`` runs each, interleaved;
2. wall time of one Optuna study of ``--trials`` REINFORCE trials on CartPole-v1, run by 1 worker
   and by 2 workers (each its share of the trials) joined through ``--storage``: the journal file
   by default, or a database URL given with ``--storage-url`` (e.g. a PostgreSQL server). Both
   studies get the same hyperparameters, enqueued before the workers start, so that they do the
   same work (randomly sampled trials differ a lot in cost).

    python benchmarks/bench_zoo_search.py            # full: 5 repeats, 8 trials
    python benchmarks/bench_zoo_search.py --quick    # 3 repeats, 4 trials

Workers are separate processes started with ``--num-threads 1``; on a 2-core machine two workers
are the most that can run in parallel, and other load on the machine lowers the speed-up.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import optuna

from sb3_ext.zoo.samplers import suggest_reinforce
from sb3_ext.zoo.study import join_study, open_storage

REPO = Path(__file__).resolve().parents[1]
TINY_PPO = ["--algo", "ppo", "--env", "CartPole-v1", "-n", "256", "--eval-freq", "-1", "--seed", "0",
            "--num-threads", "1", "-params", "n_envs:1", "n_steps:64", "batch_size:64", "n_epochs:1"]  # fmt: skip


def run(args: list[str], cwd: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    return subprocess.Popen(
        [sys.executable, *args], cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )


def wait_ok(process: subprocess.Popen) -> None:
    _, stderr = process.communicate()
    if process.returncode != 0:
        raise SystemExit(f"benchmark command failed ({process.returncode}): {process.args}\n{stderr[-2000:]}")


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(commands: list[list[str]], cwd: Path) -> tuple[float, float]:
    """Wall and CPU seconds (all processes) to run ``commands`` side by side to their end."""
    start, cpu = time.perf_counter(), children_cpu_seconds()
    for process in [run(args, cwd) for args in commands]:
        wait_ok(process)
    return time.perf_counter() - start, children_cpu_seconds() - cpu


def command_overhead(repeats: int, workdir: Path) -> tuple[tuple[float, float], tuple[float, float]]:
    """Median (wall, CPU) seconds of the tiny PPO run through rl-zoo3 and through sb3-ext."""
    plain, ours = [], []
    for i in range(repeats):
        plain.append(timed([["-m", "rl_zoo3.train", *TINY_PPO, "-f", f"plain_{i}"]], workdir))
        ours.append(timed([["-m", "sb3_ext.train", *TINY_PPO, "-f", f"ours_{i}"]], workdir))
    return medians(plain), medians(ours)


def medians(runs: list[tuple[float, float]]) -> tuple[float, float]:
    return statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)


def search_time(n_workers: int, n_trials: int, storage: str, workdir: Path) -> tuple[float, float]:
    """Wall and CPU seconds for ``n_workers`` processes to finish one study of ``n_trials`` trials."""
    study = f"bench-{n_workers}-{uuid.uuid4().hex[:6]}"
    # The same trials for every worker count: sampled once, enqueued before the workers start.
    sampling = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    planned = []
    for _ in range(n_trials):
        trial = sampling.ask()
        suggest_reinforce(trial)
        planned.append(trial.params)
    shared = join_study(storage, study)
    for params in planned:
        shared.enqueue_trial(params)
    search = ["-m", "sb3_ext.train", "--algo", "reinforce", "--env", "CartPole-v1", "-optimize",
              "--storage", storage, "--study-name", study, "--n-trials", str(n_trials // n_workers),
              "-n", "2048", "--n-evaluations", "1", "--eval-episodes", "2", "--sampler", "random",
              "--pruner", "none", "--no-optim-plots", "--num-threads", "1", "-f", "search",
              "-params", "n_envs:1"]  # fmt: skip
    elapsed = timed([[*search, "--seed", str(seed)] for seed in range(n_workers)], workdir)
    finished = optuna.load_study(storage=open_storage(storage), study_name=study).trials
    assert len(finished) == n_trials and [t.params for t in finished] == planned
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 repeats and 4 trials")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--trials", type=int, default=None, help="trials per study (even)")
    parser.add_argument("--storage-url", default=None, help="database URL instead of the journal file")
    args = parser.parse_args()
    repeats = args.repeats or (3 if args.quick else 5)
    trials = args.trials or (4 if args.quick else 8)
    if trials % 2:
        parser.error("--trials must be even (two workers share them)")

    with tempfile.TemporaryDirectory(prefix="bench_zoo_") as directory:
        workdir = Path(directory)
        plain, ours = command_overhead(repeats, workdir)
        storage = args.storage_url or str(workdir / "studies.log")
        one = search_time(1, trials, storage, workdir)
        two = search_time(2, trials, storage, workdir)

    kind = "database" if args.storage_url else "journal file"
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    print(f"\nrl-zoo3 integration ({os.cpu_count()} cores, load average {load}; repeats={repeats}, "
          f"trials={trials}, storage: {kind})\n")
    print("| measurement | rl-zoo3 / 1 worker | sb3-ext / 2 workers | ratio |")
    print("|---|---|---|---|")
    print(f"| tiny PPO run, wall s | {plain[0]:.2f} | {ours[0]:.2f} | {ours[0] / plain[0]:.2f} |")
    print(f"| tiny PPO run, CPU s | {plain[1]:.2f} | {ours[1]:.2f} | {ours[1] / plain[1]:.2f} |")
    print(f"| {trials}-trial REINFORCE search, wall s | {one[0]:.1f} | {two[0]:.1f} | speed-up {one[0] / two[0]:.2f} |")
    print(f"| {trials}-trial REINFORCE search, CPU s | {one[1]:.1f} | {two[1]:.1f} | {two[1] / one[1]:.2f} |")

if __name__ == "__main__":
    main()
