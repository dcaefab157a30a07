"""DelayedTD3: same updates as SB3's TD3, correct gap statistics, counters, guard, save/load."""

import copy
import csv
import warnings

import gymnasium as gym
import numpy as np
import pytest
import torch as th
import yaml
from stable_baselines3 import TD3
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.logger import configure
from stable_baselines3.common.monitor import Monitor

from sb3_ext.delayed_td3 import DelayedTD3
from sb3_ext.zoo.config import HYPERPARAMS_DIR

# Tiny networks on a shared 2-core machine: extra intra-op threads only spin against each other.
th.set_num_threads(1)

HYPERPARAMS = HYPERPARAMS_DIR / "delayed_td3.yml"


def small(**overrides) -> dict:
    """Tiny, fast settings (a fresh dict each time: SB3 edits policy_kwargs in place)."""
    return {"policy_kwargs": {"net_arch": [32, 32]}, "learning_starts": 50, "batch_size": 32, "seed": 0, **overrides}


def test_updates_are_exactly_sb3_td3():
    """Watching TD3's train() must not change it: same seed, same parameters after learning."""
    # Built and trained one after the other: the seed is applied to the global RNGs at construction.
    ours = DelayedTD3("MlpPolicy", "Pendulum-v1", **small()).learn(150)
    theirs = TD3("MlpPolicy", "Pendulum-v1", **small()).learn(150)
    for mine, reference in zip(ours.policy.state_dict().values(), theirs.policy.state_dict().values(), strict=False):
        th.testing.assert_close(mine, reference, rtol=0, atol=0)
    # 100 gradient steps, actor and targets every policy_delay=2 of them.
    assert (ours.critic_updates, ours.actor_updates) == (100, 50)


def test_logged_statistics(tmp_path):
    model = DelayedTD3("MlpPolicy", "Pendulum-v1", policy_delay=3, **small())
    model.set_logger(configure(str(tmp_path), ["csv"]))
    model.learn(210, log_interval=1)  # Pendulum episodes are 200 steps: one row, at step 200
    rows = list(csv.DictReader((tmp_path / "progress.csv").open()))
    last = rows[-1]
    for key in ("critic_gap", "critic_gap_max", "critic_gap_relative", "actor_loss", "critic_loss"):
        assert np.isfinite(float(last[f"train/{key}"])), key
    assert float(last["train/policy_delay"]) == 3
    # Logged at the end of step 200's rollout, before its update: updates after steps 51..199.
    assert int(float(last["train/critic_updates"])) == 149
    assert int(float(last["train/actor_updates"])) == 149 // 3
    assert float(last["train/critic_gap_max"]) >= float(last["train/critic_gap"]) > 0


def test_critic_gap_is_the_mean_abs_difference_on_the_sampled_batch():
    """Recompute |Q1 - Q2| from the pre-update critic on the same batch (same numpy seed)."""
    model = DelayedTD3("MlpPolicy", "Pendulum-v1", **small())
    model.learn(100)
    critic_before = copy.deepcopy(model.critic)
    np.random.seed(11)
    model.train(gradient_steps=1, batch_size=64)
    logged = model.logger.name_to_value
    np.random.seed(11)
    batch = model.replay_buffer.sample(64)
    with th.no_grad():
        q1, q2 = critic_before(batch.observations, batch.actions)
    gap = (q1 - q2).abs()
    assert logged["train/critic_gap"] == pytest.approx(gap.mean().item(), rel=1e-5)
    assert logged["train/critic_gap_max"] == pytest.approx(gap.max().item(), rel=1e-5)
    expected_relative = gap.mean().item() / th.cat((q1, q2)).abs().mean().item()
    assert logged["train/critic_gap_relative"] == pytest.approx(expected_relative, rel=1e-5)


def test_save_load_round_trip_keeps_counters_and_predictions(tmp_path):
    model = DelayedTD3("MlpPolicy", "Pendulum-v1", gap_alert=3.0, gap_patience=7, **small())
    model.learn(120)
    model.save(tmp_path / "dtd3.zip")
    loaded = DelayedTD3.load(tmp_path / "dtd3.zip", env=gym.make("Pendulum-v1"))
    assert (loaded.actor_updates, loaded.critic_updates) == (35, 70)
    assert (loaded.gap_alert, loaded.gap_patience, loaded.gap_action) == (3.0, 7, "warn")
    observations = np.random.default_rng(0).uniform(-1, 1, size=(20, 3)).astype(np.float32)
    np.testing.assert_array_equal(model.predict(observations)[0], loaded.predict(observations)[0])
    loaded.learn(30, reset_num_timesteps=False)  # the hooks are live again after load
    assert (loaded.actor_updates, loaded.critic_updates) == (50, 100)


def test_guard_stops_training_cleanly_and_warns_once():
    model = DelayedTD3("MlpPolicy", "Pendulum-v1", gap_alert=1e-12, gap_patience=5, gap_action="stop", **small())
    with pytest.warns(RuntimeWarning, match="stopping training") as caught:
        returned = model.learn(1000)
    assert returned is model
    assert model.critic_updates == 5 and model.num_timesteps == 55
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the warning is not repeated
        model.learn(10, reset_num_timesteps=False)  # a new learn() resumes, trips again, stops again
    assert model.critic_updates == 10
    assert len([w for w in caught if issubclass(w.category, RuntimeWarning)]) == 1


def test_guard_warn_only_keeps_training_and_stays_quiet_below_threshold():
    model = DelayedTD3("MlpPolicy", "Pendulum-v1", gap_alert=1e-12, gap_patience=5, **small())
    with pytest.warns(RuntimeWarning, match="training continues"):
        model.learn(80)
    assert model.num_timesteps == 80
    calm = DelayedTD3("MlpPolicy", "Pendulum-v1", gap_alert=1e6, gap_patience=1, gap_action="stop", **small())
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        calm.learn(80)
    assert calm.num_timesteps == 80


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"gap_alert": 0.0}, "gap_alert=0.0"), ({"gap_patience": 0}, "gap_patience=0"), ({"gap_action": "halt"}, "halt")],
)
def test_bad_guard_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DelayedTD3("MlpPolicy", "Pendulum-v1", **kwargs)


def test_yaml_pendulum_entry_is_constructor_arguments():
    entry = yaml.safe_load(HYPERPARAMS.read_text())["Pendulum-v1"]
    zoo_only = {"n_timesteps", "policy", "noise_type", "noise_std", "policy_kwargs"}
    arguments = {key: value for key, value in entry.items() if key not in zoo_only}
    model = DelayedTD3(entry["policy"], "Pendulum-v1", policy_kwargs=eval(entry["policy_kwargs"]), **arguments)
    assert model.gap_alert == 0.5 and model.learning_starts == 10_000


@pytest.mark.slow
def test_learns_pendulum():
    """A short run against the same untrained network: the swing-up return must improve clearly."""
    model = DelayedTD3("MlpPolicy", "Pendulum-v1", gamma=0.98, learning_starts=1000, seed=1,
                       policy_kwargs={"net_arch": [64, 64]})
    before, _ = evaluate_policy(model, Monitor(gym.make("Pendulum-v1")), n_eval_episodes=5)
    model.learn(8000)
    after, _ = evaluate_policy(model, Monitor(gym.make("Pendulum-v1")), n_eval_episodes=5)
    assert after > before + 500, (before, after)
