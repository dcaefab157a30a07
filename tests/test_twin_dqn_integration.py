"""TwinDQN and QuantileDQN as SB3 citizens: save/load (also in a fresh process), n-step replay (also
with Dict observations), several envs, Dict observations, CnnPolicy, TensorBoard run names."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import yaml
import torch as th
from gymnasium import spaces
from stable_baselines3.common.buffers import DictReplayBuffer, NStepReplayBuffer
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.torch_layers import CombinedExtractor, NatureCNN

from sb3_ext.common.buffers import DictNStepReplayBuffer
from sb3_ext.quantile_dqn import QuantileDQN
from sb3_ext.twin_dqn import TwinDQN
from sb3_ext.zoo.config import HYPERPARAMS_DIR

th.set_num_threads(1)

# SB3 warns "`n_steps=...` is ignored" when it believes n-step returns are off; they never may be here.
pytestmark = pytest.mark.filterwarnings("error:`n_steps=.* is ignored:UserWarning")

REPO = Path(__file__).resolve().parent.parent
ALGOS = [TwinDQN, QuantileDQN]
SMALL = dict(learning_starts=16, batch_size=16, train_freq=16, gradient_steps=2, buffer_size=1000, seed=0)


class SideImageEnv(gym.Env):
    """A 36x36 uint8 image lit on its left or right half; the matching action pays 1 (NatureCNN-sized)."""

    observation_space = spaces.Box(0, 255, shape=(36, 36, 1), dtype=np.uint8)
    action_space = spaces.Discrete(2)

    def _observe(self) -> np.ndarray:
        self.side = int(self.np_random.integers(2))
        image = np.zeros((36, 36, 1), dtype=np.uint8)
        image[:, 18 * self.side : 18 * (self.side + 1)] = 255
        return image

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return self._observe(), {}

    def step(self, action):
        reward = float(action == self.side)
        self.t += 1
        return self._observe(), reward, False, self.t >= 8, {}


class DictTargetEnv(gym.Env):
    """Dict observation (a position and a target); moving towards the target pays 1."""

    observation_space = spaces.Dict(
        {"position": spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32), "target": spaces.Discrete(2)}
    )
    action_space = spaces.Discrete(2)

    def _observe(self) -> dict:
        self.target = int(self.np_random.integers(2))
        return {"position": self.np_random.uniform(-1, 1, size=2).astype(np.float32), "target": self.target}

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return self._observe(), {}

    def step(self, action):
        reward = float(action == self.target)
        self.t += 1
        return self._observe(), reward, False, self.t >= 8, {}


class CountdownEnv(gym.Env):
    """Reward 1 per step; the episode terminates after ``LENGTH`` steps; the observation is ``t / LENGTH``
    (as ``{"t": ...}`` with ``dict_obs=True``)."""

    LENGTH = 7
    action_space = spaces.Discrete(2)

    def __init__(self, dict_obs: bool = False) -> None:
        self.dict_obs = dict_obs
        box = spaces.Box(0.0, 1.0, shape=(1,), dtype=np.float32)
        self.observation_space = spaces.Dict({"t": box}) if dict_obs else box

    def _observe(self) -> np.ndarray | dict:
        t = np.array([self.t / self.LENGTH], dtype=np.float32)
        return {"t": t} if self.dict_obs else t

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return self._observe(), {}

    def step(self, action):
        self.t += 1
        return self._observe(), 1.0, self.t == self.LENGTH, False, {}


def distribution(model, obs) -> np.ndarray:
    """What each algorithm exposes about its values: Q-values per head, or quantiles per action."""
    return model.predict_q_values(obs) if isinstance(model, TwinDQN) else model.predict_distribution(obs)


def value_net(model):
    return model.q_net if isinstance(model, TwinDQN) else model.quantile_net


VARIANTS = {
    "n_steps": ("MlpPolicy", lambda: "CartPole-v1", dict(n_steps=3)),
    "n_envs": ("MlpPolicy", lambda: make_vec_env("CartPole-v1", n_envs=3, seed=0), dict(target_update_interval=30)),
    "separate_trunks": ("MlpPolicy", lambda: "CartPole-v1", dict(policy_kwargs=dict(share_trunk=False, n_critics=3))),
    "dict": ("MultiInputPolicy", DictTargetEnv, {}),
    "dict_n_steps": ("MultiInputPolicy", DictTargetEnv, dict(n_steps=3)),
    "cnn": ("CnnPolicy", SideImageEnv, dict(policy_kwargs=dict(features_extractor_kwargs=dict(features_dim=32)))),
}


@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("algo", ALGOS, ids=lambda a: a.__name__)
def test_variant_trains_and_round_trips(algo, variant, tmp_path):
    policy, make_env, kwargs = VARIANTS[variant]
    model = algo(policy, make_env(), **{**SMALL, **kwargs})
    before = [p.detach().clone() for p in model.policy.parameters()]
    model.learn(96)
    assert model._n_updates > 0
    assert any(not th.equal(a, b) for a, b in zip(before, model.policy.parameters(), strict=True))

    if variant == "n_steps":
        assert isinstance(model.replay_buffer, NStepReplayBuffer) and model.replay_buffer.n_steps == 3
        assert model.replay_buffer.sample(8).discounts is not None
    if variant == "n_envs":
        assert model.n_envs == model.replay_buffer.n_envs == 3 and model.num_timesteps == 96
    if variant.startswith("dict"):
        assert isinstance(model.replay_buffer, DictReplayBuffer)
        assert isinstance(value_net(model).features_extractor, CombinedExtractor)
    if variant == "dict_n_steps":
        assert isinstance(model.replay_buffer, DictNStepReplayBuffer) and model.replay_buffer.n_steps == 3
        assert model.replay_buffer.sample(8).discounts is not None
    if variant == "cnn":
        assert isinstance(value_net(model).features_extractor, NatureCNN)
    if variant == "separate_trunks":
        net = value_net(model)
        assert len((net.q_net if algo is TwinDQN else net.quantile_net).critics) == 3

    env = model.get_env()
    obs = env.reset()
    model.save(tmp_path / "model")
    loaded = algo.load(tmp_path / "model", env=env)
    np.testing.assert_array_equal(model.predict(obs, deterministic=True)[0], loaded.predict(obs, deterministic=True)[0])
    np.testing.assert_array_equal(distribution(model, obs), distribution(loaded, obs))


@pytest.mark.parametrize("dict_obs", [False, True], ids=["box", "dict"])
@pytest.mark.parametrize("algo", ALGOS, ids=lambda a: a.__name__)
def test_n_step_returns_are_used_in_training_and_after_load(algo, dict_obs, tmp_path):
    """n_steps=3: the n-step buffer (SB3's NStepReplayBuffer; ours for Dict observations) gives every
    sample its 3-step return and gamma ** 3 (fewer steps at the episode's end), train() bootstraps with
    those discounts, and a loaded model keeps it."""
    gamma, length = 0.9, CountdownEnv.LENGTH
    policy = "MultiInputPolicy" if dict_obs else "MlpPolicy"
    buffer_class = DictNStepReplayBuffer if dict_obs else NStepReplayBuffer
    model = algo(policy, CountdownEnv(dict_obs), n_steps=3, gamma=gamma, **SMALL)
    used_discounts = []
    loss = model._loss
    model._loss = lambda replay_data: used_discounts.append(replay_data.discounts) or loss(replay_data)
    # Rollouts of train_freq=16 steps: 16 * 7 steps end on a terminal step, so the buffer's newest
    # transition (which NStepReplayBuffer treats as a cut) cuts no sample short.
    model.learn(SMALL["train_freq"] * length)

    assert type(model.replay_buffer) is buffer_class
    assert (model.replay_buffer.n_steps, model.replay_buffer.gamma) == (3, gamma)
    # Expected values from the step counter t in the observation: k = min(3, steps left) steps.
    sample = model.replay_buffer.sample(200)
    observations, next_observations = sample.observations, sample.next_observations
    if dict_obs:
        observations, next_observations = observations["t"], next_observations["t"]
    t = np.rint(observations.numpy()[:, 0] * length).astype(int)
    k = np.minimum(3, length - t)
    np.testing.assert_allclose(sample.discounts.numpy()[:, 0], gamma**k, rtol=1e-6)
    np.testing.assert_allclose(sample.rewards.numpy()[:, 0], (1 - gamma**k) / (1 - gamma), rtol=1e-6)
    np.testing.assert_array_equal(sample.dones.numpy()[:, 0], (t + k == length).astype(np.float32))
    np.testing.assert_allclose(next_observations.numpy()[:, 0], (t + k) / length, rtol=1e-6)
    assert (k == 3).any() and (k < 3).any()
    # train() got n-step discounts (fewer steps only where an episode or the filled buffer ends).
    used = th.cat(used_discounts).numpy()[:, 0]
    assert np.isclose(used, gamma**3).any()
    assert np.isclose(used[:, None], gamma ** np.arange(1, 4)).any(axis=1).all()

    model.save(tmp_path / "model")
    loaded = algo.load(tmp_path / "model", env=CountdownEnv(dict_obs))  # the module's filter fails on SB3's warning
    assert type(loaded.replay_buffer) is buffer_class
    assert (loaded.n_steps, loaded.replay_buffer.n_steps, loaded.replay_buffer.gamma) == (3, 3, gamma)
    loaded.learn(SMALL["train_freq"] * 2)
    assert np.isclose(loaded.replay_buffer.sample(50).discounts.numpy(), gamma**3).any()


def test_load_in_a_fresh_process_with_only_import_sb3_ext(tmp_path):
    """Both algorithms in one subprocess (one interpreter start-up): identical values and actions."""
    options = {"TwinDQN": dict(target_reduction="mean"), "QuantileDQN": dict(risk_measure="cvar", risk_alpha=0.3)}
    obs = np.random.default_rng(0).normal(size=(6, 4)).astype(np.float32)
    np.save(tmp_path / "obs.npy", obs)
    models = {}
    for algo in ALGOS:
        models[algo.__name__] = algo("MlpPolicy", "CartPole-v1", **SMALL, **options[algo.__name__])
        models[algo.__name__].learn(64)
        models[algo.__name__].save(tmp_path / f"{algo.__name__}.zip")

    code = """
import json, sys, numpy as np, sb3_ext
obs, out = np.load(sys.argv[1] + "/obs.npy"), {}
for name, method in (("TwinDQN", "predict_q_values"), ("QuantileDQN", "predict_distribution")):
    model = getattr(sb3_ext, name).load(f"{sys.argv[1]}/{name}.zip")
    out[name] = {
        "values": getattr(model, method)(obs).tolist(),
        "actions": model.predict(obs, deterministic=True)[0].tolist(),
        "options": {k: getattr(model, k, None) for k in ("target_reduction", "double_q")}
        | {k: model.policy_kwargs.get(k) for k in ("risk_measure", "risk_alpha")},
    }
print(json.dumps(out))
"""
    # One thread, as in this process: a different thread count may change the last bit of a matmul.
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, env=env, check=True)
    loaded = json.loads(out.stdout)
    for name, model in models.items():
        np.testing.assert_array_equal(np.array(loaded[name]["values"], dtype=np.float32), distribution(model, obs))
        assert loaded[name]["actions"] == model.predict(obs, deterministic=True)[0].tolist()
        for key, value in options[name].items():
            assert loaded[name]["options"][key] == value


@pytest.mark.parametrize("algo", ALGOS, ids=lambda a: a.__name__)
def test_tensorboard_run_is_named_after_the_class(algo, tmp_path):
    model = algo("MlpPolicy", "CartPole-v1", tensorboard_log=str(tmp_path), **SMALL)
    model.learn(32)
    assert [p.name for p in tmp_path.iterdir()] == [f"{algo.__name__}_1"]


@pytest.mark.parametrize(("algo", "key"), [(TwinDQN, "twin_dqn"), (QuantileDQN, "quantile_dqn")])
def test_zoo_hyperparameters_build_a_model(algo, key):
    """Every entry of hyperparams/<key>.yml names real constructor arguments."""
    entries = yaml.safe_load((HYPERPARAMS_DIR / f"{key}.yml").read_text())
    assert {"CartPole-v1", "Acrobot-v1"} <= set(entries)
    for env_id, entry in entries.items():
        kwargs = {k: v for k, v in entry.items() if k not in ("n_timesteps", "policy")}
        kwargs["policy_kwargs"] = eval(kwargs.get("policy_kwargs", "{}"), {"__builtins__": {}, "dict": dict})
        kwargs["buffer_size"] = 10  # build quickly; the value itself is checked by the zoo, not here
        model = algo(entry["policy"], env_id, **kwargs)
        assert model.learning_rate == entry["learning_rate"]
