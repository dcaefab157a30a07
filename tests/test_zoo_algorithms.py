"""Every zoo algorithm through the commands: train, load in a fresh process, enjoy, optimize.

The training runs are shared (module fixture) and run two at a time; each test then checks one
property of one algorithm. Budgets are tiny: these tests check the plumbing, not learning.
Every algorithm trains and loads in the default run; ``enjoy`` and ``--optimize`` run there for
one algorithm of each kind (on-policy, off-policy, multi-agent) and for the others with ``-m slow``.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import optuna
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from sb3_ext import train
from sb3_ext.zoo.registry import ZOO_ALGORITHMS
from sb3_ext.zoo.study import open_storage
from zoo_support import assert_ok, run_python, zoo_class, zoo_test_case

# Our algorithms, and rl-zoo3's PPO on our own env (hyperparams/ppo.yml).
KEYS = [*sorted(ZOO_ALGORITHMS), "ppo"]
# One of each kind in the default run: on-policy, off-policy, multi-agent (and off-policy).
DEFAULT_RUN = {"reinforce", "twin_dqn", "maac"}


def default_run_or_slow(keys: list[str]) -> list:
    return [key if key in DEFAULT_RUN else pytest.param(key, marks=pytest.mark.slow) for key in keys]
TRAIN_STEPS = 256

LOAD_ALL = """
import json, sys
from stable_baselines3 import PPO
from sb3_ext.zoo.registry import ZOO_ALGORITHMS
classes = {"ppo": PPO, **{key: entry.load_class() for key, entry in ZOO_ALGORITHMS.items()}}
report = {}
for key, path in json.loads(sys.argv[1]).items():
    model = classes[key].load(path)
    report[key] = [type(model).__name__, model.num_timesteps]
print(json.dumps(report))
"""


def train_arguments(key: str) -> list[str]:
    env_id, extra_flags = zoo_test_case(key)
    return [
        "-m", "sb3_ext.train", "--algo", key, "--env", env_id, "-n", str(TRAIN_STEPS), "-f", "logs", "-tb", "tb",
        "--eval-freq", "-1", "--seed", "0", "--num-threads", "1", *extra_flags,
    ]  # fmt: skip


def enjoy_arguments(key: str) -> list[str]:
    env_id, _ = zoo_test_case(key)
    return ["-m", "sb3_ext.enjoy", "--algo", key, "--env", env_id, "-n", "20", "--no-render", "--num-threads", "1"]


def saved_model(root, key: str):
    env_id, _ = zoo_test_case(key)
    return root / "logs" / key / f"{env_id}_1" / f"{env_id}.zip"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Train every algorithm, then load every model in one fresh process."""
    root = tmp_path_factory.mktemp("zoo_runs")
    with ThreadPoolExecutor(max_workers=2) as pool:
        trained = dict(zip(KEYS, pool.map(lambda key: run_python(train_arguments(key), cwd=root), KEYS), strict=False))
    paths = {key: str(saved_model(root, key)) for key in KEYS if saved_model(root, key).is_file()}
    loaded = run_python(["-c", LOAD_ALL, json.dumps(paths)], cwd=root)
    return root, trained, loaded


@pytest.mark.parametrize("key", KEYS)
def test_train_exits_0_and_writes_the_zoo_layout(runs, key):
    root, trained, _ = runs
    assert_ok(trained[key])
    env_id, _ = zoo_test_case(key)
    run = root / "logs" / key / f"{env_id}_1"
    assert saved_model(root, key).is_file()
    assert list(run.glob("*.monitor.csv"))
    assert {p.name for p in (run / env_id).iterdir()} >= {"args.yml", "config.yml", "command.txt"}


@pytest.mark.parametrize("key", KEYS)
def test_tensorboard_run_is_named_after_the_algorithm(runs, key):
    root, _, _ = runs
    env_id, _ = zoo_test_case(key)
    name = zoo_class(key).__name__
    assert list((root / "tb" / env_id / f"{name}_1").glob("events.out.tfevents.*"))


@pytest.mark.parametrize("key", KEYS)
def test_saved_model_loads_with_its_class_in_a_fresh_process(runs, key):
    _, _, loaded = runs
    assert_ok(loaded)
    report = json.loads(loaded.stdout.strip().splitlines()[-1])
    assert report[key][0] == zoo_class(key).__name__
    assert report[key][1] >= TRAIN_STEPS


@pytest.mark.parametrize("key", default_run_or_slow(KEYS))
def test_enjoy_runs_the_trained_agent(runs, key):
    root, _, _ = runs
    enjoyed = run_python(enjoy_arguments(key), cwd=root)
    assert_ok(enjoyed)
    assert f"Loading logs/{key}/" in enjoyed.stdout


def scalars(root, key: str, tag: str) -> list[float]:
    """Values of TensorBoard scalar ``tag`` in the run of zoo key ``key``."""
    env_id, _ = zoo_test_case(key)
    events = EventAccumulator(str(root / "tb" / env_id / f"{zoo_class(key).__name__}_1"))
    events.Reload()
    return [event.value for event in events.Scalars(tag)] if tag in events.Tags()["scalars"] else []


def test_lattice_callbacks_from_yaml_log_morphology_and_ess(runs):
    """ppo.yml's LatticeGrowth-v0 entry names MorphologyLogger and ESSEarlyStopping."""
    root, _, _ = runs
    roughness = scalars(root, "ppo", "morphology/roughness_mean")
    ess = scalars(root, "ppo", "train/ess_mean")
    assert roughness and min(roughness) >= 0
    assert ess and all(0 < value <= 1 for value in ess)


def test_callback_from_yaml_decays_the_noise_and_logs_it(runs):
    """delayed_td3.yml's MountainCarContinuous entry names sb3_ext.callbacks.DecayingNoise."""
    root, _, _ = runs
    sigmas = scalars(root, "delayed_td3", "train/noise_sigma")
    assert len(sigmas) >= 2 and 0.1 < sigmas[-1] < sigmas[0] <= 0.5
    assert sigmas == sorted(sigmas, reverse=True)


@pytest.mark.parametrize("key", default_run_or_slow(sorted(ZOO_ALGORITHMS)))
def test_short_optimize_run_completes_and_is_stored_in_the_journal(key, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    env_id, extra_flags = zoo_test_case(key)
    train.main(
        ["--algo", key, "--env", env_id, "-optimize", "--study-name", "short", "--n-trials", "1", "-n", "128",
         "--n-evaluations", "1", "--eval-episodes", "1", "--no-optim-plots", "--seed", "0", "--num-threads", "1",
         "-f", "logs", *extra_flags]
    )  # fmt: skip
    study = optuna.load_study(storage=open_storage(f"logs/{key}/optuna_journal.log"), study_name="short")
    assert [trial.state for trial in study.trials] == [optuna.trial.TrialState.COMPLETE]
