"""Helpers for the rl-zoo3 integration tests: run our commands in fresh processes, find PostgreSQL."""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# Set by .ci/run: the URL of the PostgreSQL it started, and "the server is required here".
POSTGRES_URL_VARIABLE = "SB3_EXT_TEST_POSTGRES_URL"
REQUIRE_POSTGRES_VARIABLE = "SB3_EXT_REQUIRE_POSTGRES"


def _child_environment(pythonpath: tuple[Path, ...] = ()) -> dict[str, str]:
    paths = [*map(str, pythonpath), str(REPO), os.environ.get("PYTHONPATH", "")]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p)}


def run_python(args: list[str], cwd: Path, pythonpath: tuple[Path, ...] = (), timeout: float = 600):
    """``python <args>`` in a fresh process that imports this checkout; returns the CompletedProcess."""
    return subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        env=_child_environment(pythonpath),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def start_python(args: list[str], cwd: Path) -> subprocess.Popen:
    """Like :func:`run_python` but returns at once (for workers that must run side by side)."""
    return subprocess.Popen(
        [sys.executable, *args],
        cwd=cwd,
        env=_child_environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def assert_ok(result: subprocess.CompletedProcess) -> None:
    """Fail with the command's own output when it did not exit 0."""
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"


def _postgres_bin_dir() -> Path:
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not candidates:
        raise FileNotFoundError("initdb not found (PostgreSQL server binaries are not installed)")
    return Path(candidates[-1]).parent


@contextlib.contextmanager
def private_postgres() -> Iterator[str]:
    """Start a throwaway PostgreSQL server on a Unix socket in a temporary directory.

    PostgreSQL refuses to run as root, so as root the server runs as the ``postgres`` user.
    Yields the SQLAlchemy URL of an empty database; the server and its files go afterwards.
    """
    bin_dir = _postgres_bin_dir()
    base = Path(tempfile.mkdtemp(prefix="sb3ext-pg-"))  # short path: socket paths are limited
    as_server_user: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(base, user="postgres")
        as_server_user = ["runuser", "-u", "postgres", "--"]
    data, socket_dir = base / "data", base
    started = False
    try:
        subprocess.run(
            [*as_server_user, bin_dir / "initdb", "-D", data, "-A", "trust", "-U", "sb3ext", "--no-sync"],
            check=True,
            capture_output=True,
        )
        server_options = f"-k {socket_dir} -c listen_addresses='' -c fsync=off"
        subprocess.run(
            [*as_server_user, bin_dir / "pg_ctl", "-D", data, "-l", base / "server.log", "-o", server_options, "-w", "start"],
            check=True,
            capture_output=True,
        )
        started = True
        subprocess.run(
            [*as_server_user, bin_dir / "createdb", "-h", socket_dir, "-U", "sb3ext", "sb3ext"],
            check=True,
            capture_output=True,
        )
        yield f"postgresql://sb3ext@/sb3ext?host={socket_dir}"
    finally:
        if started:
            subprocess.run(
                [*as_server_user, bin_dir / "pg_ctl", "-D", data, "-m", "immediate", "stop"], capture_output=True
            )
        shutil.rmtree(base, ignore_errors=True)


@contextlib.contextmanager
def postgres_url() -> Iterator[str]:
    """The server .ci/run started, else a private one; skip only where neither is possible outside CI."""
    url = os.environ.get(POSTGRES_URL_VARIABLE)
    if url:
        yield url
        return
    with contextlib.ExitStack() as stack:
        try:
            url = stack.enter_context(private_postgres())
        except (OSError, subprocess.CalledProcessError) as error:
            detail = (getattr(error, "stderr", b"") or b"").decode(errors="replace")[-500:]
            message = f"cannot start PostgreSQL: {error} {detail}"
            if os.environ.get(REQUIRE_POSTGRES_VARIABLE) or os.environ.get("CI"):
                pytest.fail(message)
            pytest.skip(message)
        yield url


# How the per-algorithm tests run each zoo key cheaply: the env (an entry of our
# hyperparams/<key>.yml) and extra train flags that shrink the budget. A key missing here runs on
# the first env of its YAML with no extra flags.
ZOO_TEST_CASES: dict[str, tuple[str, list[str]]] = {
    "reinforce": ("LatticeGrowth-v0", ["-params", "n_envs:2"]),
    # The entry whose YAML installs our DecayingNoise callback; short episodes so that SB3 logs.
    "delayed_td3": (
        "MountainCarContinuous-v0",
        ["-params", "learning_starts:64", "buffer_size:1000", "batch_size:32",
         "--env-kwargs", "max_episode_steps:50", "--log-interval", "1"],
    ),
    "twin_dqn": ("CartPole-v1", ["-params", "learning_starts:64", "buffer_size:1000", "train_freq:4", "gradient_steps:1"]),
    "quantile_dqn": ("CartPole-v1", ["-params", "learning_starts:64", "buffer_size:1000", "train_freq:4", "gradient_steps:1"]),
    "maac": ("Swarm2D-v0", ["-params", "learning_starts:64", "buffer_size:1000", "batch_size:32", "train_freq:8"]),
    "phase2": ("AssistGrid-v0", []),
    "shared_actor": ("Swarm2D-v0", ["-params", "n_envs:1", "n_steps:32", "batch_size:64", "n_epochs:1"]),
    # rl-zoo3's PPO on our env; 1024 steps so that the YAML's ESSEarlyStopping checks once.
    "ppo": ("LatticeGrowth-v0", ["-n", "1024", "-params", "n_envs:1", "n_steps:256", "batch_size:64", "n_epochs:1"]),
}


def zoo_test_case(key: str) -> tuple[str, list[str]]:
    """(env id, extra ``sb3_ext.train`` flags) for running zoo key ``key`` in a test."""
    if key in ZOO_TEST_CASES:
        return ZOO_TEST_CASES[key]
    from sb3_ext.zoo.config import HYPERPARAMS_DIR, load_hyperparams_file

    return next(iter(load_hyperparams_file(HYPERPARAMS_DIR / f"{key}.yml"))), []


def zoo_class(key: str) -> type:
    """The class rl-zoo3 trains for ``key`` once sb3-ext is registered."""
    from rl_zoo3.utils import ALGOS

    from sb3_ext.zoo.registry import register_zoo

    register_zoo()
    return ALGOS[key]
