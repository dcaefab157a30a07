"""Decaying action noise: schedule values, the draws themselves, SB3 integration, zoo YAML use."""


import numpy as np
import pytest
import torch as th
import yaml
from rl_zoo3.utils import get_callback_list
from stable_baselines3 import DDPG, SAC, TD3
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.noise import NormalActionNoise, VectorizedActionNoise

from sb3_ext.callbacks import DecayingNoise, NoiseSigmaLogger
from sb3_ext.delayed_td3 import DelayedTD3
from sb3_ext.noise.processes import (
    DecayingNormalActionNoise,
    DecayingOrnsteinUhlenbeckActionNoise,
    SigmaSchedule,
    current_noise_sigma,
    make_decaying_noise,
)
from sb3_ext.zoo.config import HYPERPARAMS_DIR

# Tiny networks on a shared 2-core machine: extra intra-op threads only spin against each other.
th.set_num_threads(1)

HYPERPARAMS = HYPERPARAMS_DIR / "delayed_td3.yml"


def small() -> dict:
    """Tiny, fast settings (a fresh dict each time: SB3 algorithms edit policy_kwargs in place)."""
    return {"policy_kwargs": {"net_arch": [16]}, "learning_starts": 20, "batch_size": 16, "seed": 0}


@pytest.mark.parametrize(
    ("schedule", "step", "expected"),
    [
        # linear 0.8 -> 0.2 over 40 steps: 0.8 - 0.6 * step / 40
        ("linear", 0, 0.8),
        ("linear", 10, 0.65),
        ("linear", 30, 0.35),
        ("linear", 40, 0.2),
        ("linear", 1000, 0.2),
        # exponential 0.8 -> 0.2 over 40 steps: 0.8 * 0.25 ** (step / 40)
        ("exponential", 0, 0.8),
        ("exponential", 20, 0.4),  # 0.8 * 0.25 ** 0.5
        ("exponential", 10, 0.8 * 2**-0.5),  # 0.8 * 0.25 ** 0.25
        ("exponential", 40, 0.2),
        ("exponential", 77, 0.2),
    ],
)
def test_schedule_values_at_chosen_steps(schedule, step, expected):
    assert SigmaSchedule(0.8, 0.2, 40, schedule)(step) == pytest.approx(expected, rel=1e-12)


def test_normal_noise_draws_use_the_scheduled_sigma():
    noise = DecayingNormalActionNoise(np.array([0.5, -0.5]), initial_sigma=[1.0, 2.0], final_sigma=0.0, decay_steps=4)
    np.random.seed(3)
    draws = [noise() for _ in range(6)]
    np.random.seed(3)
    for step, draw in enumerate(draws):
        fraction = min(step / 4, 1.0)
        sigma = np.array([1.0, 2.0]) * (1 - fraction)
        np.testing.assert_allclose(draw, np.random.normal([0.5, -0.5], sigma).astype(np.float32), rtol=1e-6)
    np.testing.assert_array_equal(draws[-1], [0.5, -0.5])  # sigma 0 after the decay
    assert noise.steps == 6


def test_ou_noise_follows_its_recurrence_and_reset_keeps_the_clock():
    theta, dt = 0.3, 0.1
    noise = DecayingOrnsteinUhlenbeckActionNoise(np.zeros(1), 1.0, 0.5, 2, theta=theta, dt=dt)
    np.random.seed(7)
    draws = [noise() for _ in range(4)]
    np.random.seed(7)
    state = 0.0
    for step, draw in enumerate(draws):
        sigma = [1.0, 0.75, 0.5, 0.5][step]
        state = state + theta * (0.0 - state) * dt + sigma * np.sqrt(dt) * np.random.normal(size=1)
        np.testing.assert_allclose(draw, state.astype(np.float32), rtol=1e-5)
    noise.reset()
    assert noise.steps == 4 and np.all(noise.noise_prev == 0)
    assert noise.sigma == pytest.approx(0.5)


def test_vectorized_copies_decay_independently_and_sigma_is_reported():
    vec = VectorizedActionNoise(DecayingNormalActionNoise(np.zeros(1), 1.0, 0.0, 10), n_envs=2)
    for _ in range(5):
        vec()
    assert current_noise_sigma(vec) == pytest.approx(0.5)
    assert current_noise_sigma(NormalActionNoise(np.zeros(2), np.array([0.1, 0.3]))) == pytest.approx(0.2)
    assert current_noise_sigma(None) is None


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"schedule": "cubic"}, "schedule='cubic'"),
        ({"decay_steps": 0}, "decay_steps=0"),
        ({"final_sigma": -1.0}, "final_sigma"),
        ({"schedule": "exponential", "final_sigma": 0.0}, "exponential"),
        ({"noise_type": "pink"}, "noise_type='pink'"),
        ({"noise_type": "normal", "theta": 0.2}, "theta"),
    ],
)
def test_bad_values_are_refused(kwargs, match):
    arguments = {"noise_type": "normal", "initial_sigma": 0.5, "final_sigma": 0.1, "decay_steps": 10, **kwargs}
    with pytest.raises(ValueError, match=match):
        make_decaying_noise(n_actions=1, **arguments)


@pytest.mark.parametrize("algo", [DDPG, TD3, SAC, DelayedTD3])
def test_noise_works_with_off_policy_algorithms_and_survives_save_load(algo, tmp_path):
    noise = DecayingNormalActionNoise(np.zeros(1), 0.5, 0.1, decay_steps=50)
    model = algo("MlpPolicy", "Pendulum-v1", action_noise=noise, **small())
    model.learn(40, callback=NoiseSigmaLogger())
    assert model.action_noise.steps == 40  # one draw per env step, warm-up included
    assert model.logger.name_to_value["train/noise_sigma"] == pytest.approx(0.5 - 0.4 * 40 / 50)
    model.save(tmp_path / "model.zip")
    assert algo.load(tmp_path / "model.zip").action_noise.steps == 40


def test_decaying_noise_from_the_zoo_yaml_entry():
    """The MountainCar entry of hyperparams/delayed_td3.yml, parsed by rl-zoo3's own callback loader."""
    entry = yaml.safe_load(HYPERPARAMS.read_text())["MountainCarContinuous-v0"]
    (callback,) = get_callback_list(entry)
    assert isinstance(callback, DecayingNoise)
    env = make_vec_env("MountainCarContinuous-v0", n_envs=2, seed=0)
    model = TD3("MlpPolicy", env, **small())
    model.learn(40, callback=callback)
    assert isinstance(model.action_noise, VectorizedActionNoise)
    base = model.action_noise.noises[0]
    assert isinstance(base, DecayingOrnsteinUhlenbeckActionNoise)
    # 40 timesteps over 2 envs: each copy has drawn 20 times; linear 0.5 -> 0.1 over 200k steps.
    expected = 0.5 - 0.4 * 20 / 200_000
    assert model.logger.name_to_value["train/noise_sigma"] == pytest.approx(expected)
    model.learn(10, callback=callback, reset_num_timesteps=False)  # a second learn keeps the process
    assert model.action_noise.noises[0] is base


def test_decaying_noise_refuses_a_model_that_already_has_noise():
    model = TD3("MlpPolicy", "Pendulum-v1", action_noise=NormalActionNoise(np.zeros(1), np.ones(1) * 0.1), **small())
    with pytest.raises(ValueError, match="noise_type/noise_std"):
        model.learn(5, callback=DecayingNoise())
