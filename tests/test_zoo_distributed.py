"""Distributed hyperparameter search: two worker processes, one PostgreSQL study, then --trial-id."""

from __future__ import annotations

import uuid
from collections import Counter

import optuna
import pytest
import yaml
from rl_zoo3.hyperparams_opt import HYPERPARAMS_CONVERTER

from zoo_support import assert_ok, postgres_url, run_python, start_python

ALGO, ENV = "reinforce", "CartPole-v1"
TRIALS_PER_WORKER = 2


@pytest.fixture(scope="module")
def database_url():
    with postgres_url() as url:
        yield url


def test_two_workers_fill_one_postgres_study_and_the_best_trial_reloads(database_url, tmp_path):
    study_name = f"zoo-test-{uuid.uuid4().hex[:8]}"
    search = [
        "-m", "sb3_ext.train", "--algo", ALGO, "--env", ENV, "-f", "logs", "--num-threads", "1",
        "-optimize", "--storage", database_url, "--study-name", study_name,
        "--n-trials", str(TRIALS_PER_WORKER), "-n", "64", "--n-evaluations", "1", "--eval-episodes", "1",
        "--sampler", "random", "--pruner", "none", "--no-optim-plots", "-params", "n_envs:1",
    ]  # fmt: skip
    # Started together on an empty database: both race to create Optuna's schema and the study.
    workers = [start_python([*search, "--seed", str(seed)], cwd=tmp_path) for seed in (1, 2)]
    for worker in workers:
        output, _ = worker.communicate(timeout=600)
        assert worker.returncode == 0, output[-3000:]

    study = optuna.load_study(storage=database_url, study_name=study_name)
    numbers = [trial.number for trial in study.trials]
    assert sorted(numbers) == list(range(2 * TRIALS_PER_WORKER))  # no duplicates, none lost
    per_worker = Counter(trial.user_attrs["worker"].rsplit(":", 1)[1] for trial in study.trials)
    assert per_worker == {str(worker.pid): TRIALS_PER_WORKER for worker in workers}
    assert all(trial.state == optuna.trial.TrialState.COMPLETE for trial in study.trials)

    best = study.best_trial
    reload = [
        "-m", "sb3_ext.train", "--algo", ALGO, "--env", ENV, "-f", "reload", "--num-threads", "1",
        "--storage", database_url, "--study-name", study_name, "--trial-id", str(best.number),
        "-n", "16", "--eval-freq", "-1", "-params", "n_envs:1",
    ]  # fmt: skip
    assert_ok(run_python(reload, cwd=tmp_path))
    config_file = tmp_path / "reload" / ALGO / f"{ENV}_1" / ENV / "config.yml"
    saved = dict(yaml.load(config_file.read_text(), Loader=yaml.UnsafeLoader))
    assert_includes(saved, HYPERPARAMS_CONVERTER[ALGO](best.params))


def assert_includes(saved: dict, expected: dict) -> None:
    """Every expected value is in ``saved``; nested dicts may hold more (an algorithm may add to
    the policy_kwargs dict that rl-zoo3 then writes to config.yml, as A2C adds its optimizer)."""
    for key, value in expected.items():
        if isinstance(value, dict):
            assert_includes(saved[key], value)
        else:
            assert saved[key] == value, key
