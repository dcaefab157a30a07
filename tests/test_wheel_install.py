"""The built wheel stands on its own: configs are package data, the console scripts run.

The wheel is built from a copy of the sources, installed non-editable with ``pip install
--target`` into a temporary folder (the dependencies come from the running environment, which is
why no fresh venv is made: it would have to reinstall torch), and every command runs with that
folder first on ``PYTHONPATH`` and its working directory outside the source tree. Each run checks
that ``sb3_ext`` was imported from the installed copy, not from the checkout.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from sb3_ext.zoo.config import HYPERPARAMS_DIR, load_hyperparams_file
from sb3_ext.zoo.registry import ZOO_ALGORITHMS

REPO = Path(__file__).resolve().parents[1]
TRAIN_STEPS = 256


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Folder holding a non-editable install of the wheel built from this checkout."""
    root = tmp_path_factory.mktemp("wheel")
    source = root / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, source / name)
    shutil.copytree(REPO / "sb3_ext", source / "sb3_ext", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input", "--quiet"]
    subprocess.run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(root / "dist"), str(source)], check=True, cwd=root
    )
    (wheel,) = (root / "dist").glob("sb3_ext-*.whl")
    target = root / "site"
    subprocess.run([*pip, "install", "--no-deps", "--target", str(target), str(wheel)], check=True, cwd=root)
    return target


def run_installed(target: Path, cwd: Path, command: list[str], timeout: float = 300) -> subprocess.CompletedProcess:
    """Run a console script of the install (or ``python`` with the install on the path) in ``cwd``."""
    env = {**os.environ, "PYTHONPATH": str(target), "OMP_NUM_THREADS": "1"}
    executable = [sys.executable] if command[0] == "python" else [str(target / "bin" / command[0])]
    return subprocess.run([*executable, *command[1:]], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def test_the_wheel_holds_the_configs_and_imports_from_the_install(installed: Path, tmp_path: Path) -> None:
    probe = (
        "import sb3_ext; from sb3_ext.zoo.config import HYPERPARAMS_DIR;"
        " from sb3_ext.curriculum.config import DEFAULT_CONFIG_DIR, load_stage_configs;"
        " print(sb3_ext.__file__); print(sorted(p.name for p in HYPERPARAMS_DIR.glob('*.yml')));"
        " print(sorted(load_stage_configs(DEFAULT_CONFIG_DIR)))"
    )
    result = run_installed(installed, tmp_path, ["python", "-c", probe])
    assert result.returncode == 0, result.stderr
    module_file, yml_files, stages = result.stdout.splitlines()
    assert Path(module_file).resolve().is_relative_to(installed.resolve())
    assert yml_files == str(sorted(p.name for p in HYPERPARAMS_DIR.glob("*.yml")))
    assert stages == "[1, 2, 3]"


def test_every_algorithm_trains_through_the_installed_zoo_cli_and_the_curriculum_finds_its_stages(
    installed: Path, tmp_path: Path
) -> None:
    def train(key: str) -> tuple[str, str, subprocess.CompletedProcess]:
        env_id = next(iter(load_hyperparams_file(HYPERPARAMS_DIR / f"{key}.yml")))
        folder = tmp_path / key
        folder.mkdir()
        command = ["sb3-ext-train", "--algo", key, "--env", env_id, "-n", str(TRAIN_STEPS), "-f", "logs",
                   "--eval-freq", "-1", "--seed", "0", "--num-threads", "1"]  # fmt: skip
        return key, env_id, run_installed(installed, folder, command)

    # Ours, and rl-zoo3's PPO on our lattice env (its entry lives in our ppo.yml).
    with ThreadPoolExecutor(max_workers=2) as pool:
        runs = list(pool.map(train, [*sorted(ZOO_ALGORITHMS), "ppo"]))
    for key, env_id, result in runs:
        assert result.returncode == 0, f"{key} on {env_id}: {result.stderr[-2000:]}"
        assert f"Loading hyperparameters from: {installed / 'sb3_ext' / 'hyperparams'}" in result.stdout, key
        assert (tmp_path / key / "logs" / key / f"{env_id}_1" / f"{env_id}.zip").is_file(), key

    # The curriculum CLI with the stage files shipped in the wheel: evaluate the lattice PPO on stage 1.
    checkpoint = tmp_path / "ppo" / "logs" / "ppo" / "LatticeGrowth-v0_1" / "LatticeGrowth-v0.zip"
    command = ["sb3-ext-curriculum", "--eval-only", "--checkpoint", str(checkpoint), "--stage", "1",
               "--eval-episodes", "1", "--output", "eval"]  # fmt: skip
    result = run_installed(installed, tmp_path, command)
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"config from {installed / 'sb3_ext' / 'curriculum' / 'configs'}" in result.stdout
    assert len(list((tmp_path / "eval").glob("eval_stage1_*.json"))) == 1


@pytest.mark.slow
def test_a_quick_curriculum_stage_runs_from_the_install(installed: Path, tmp_path: Path) -> None:
    command = ["sb3-ext-curriculum", "--stage", "1", "--preset", "quick", "--no-progress", "--vec-env", "dummy",
               "--eval-episodes", "2", "--output", "runs"]  # fmt: skip
    result = run_installed(installed, tmp_path, command, timeout=1200)
    assert result.returncode == 0, result.stderr[-2000:]
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert (run_dir / "stage1" / "stage1_final.zip").is_file()
