"""The contract every algorithm of the package keeps, on sb3-contrib's ``MODEL_LIST`` pattern.

The algorithms are discovered from ``sb3_ext``'s public names (every exported
``BaseAlgorithm`` subclass) and their policies from each class's ``policy_aliases``, so a new
algorithm joins this suite by being exported. Each case learns a few hundred steps with tiny
networks, then checks: save/load in the same process and in a fresh one act identically,
``predict`` is deterministic and batched, ``set_env`` takes another env copy, several envs
train, Dict observations train where the algorithm offers ``MultiInputPolicy`` (and are refused
with a ``ValueError`` naming the space where it does not), TensorBoard runs are named after the
algorithm, and ``custom_objects`` on load applies a new learning rate.

The env of an algorithm is picked, not listed: multi-agent algorithms (``multi_agent`` in the
zoo registry) get a small Swarm2D arena; the others get the first of CartPole (discrete
actions), Pendulum (continuous actions) and a small AssistGrid (a world model) that the
constructor accepts. Image and Dict variants are derived from that env.
"""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from pettingzoo import ParallelEnv
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.envs import FakeImageEnv
from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv

import sb3_ext
from sb3_ext.zoo.registry import ZOO_ALGORITHMS

REPO = Path(__file__).resolve().parents[1]
LEARN_STEPS = 256


def exported_algorithms() -> list[type[BaseAlgorithm]]:
    """Every ``BaseAlgorithm`` subclass among ``sb3_ext``'s public names."""
    found = []
    for name in sb3_ext.__all__:
        value = getattr(sb3_ext, name)
        if isinstance(value, type) and issubclass(value, BaseAlgorithm):
            found.append(value)
    return found


ALGORITHMS = exported_algorithms()


def is_multi_agent(algo: type[BaseAlgorithm]) -> bool:
    for entry in ZOO_ALGORITHMS.values():
        if entry.load_class() is algo:
            return entry.multi_agent
    return False


# --- environments -------------------------------------------------------------------------------


class HalvedDictObservation(gym.ObservationWrapper):
    """A Box observation split into a Dict of its two halves (a Dict env with known content)."""

    def __init__(self, env: gym.Env):
        super().__init__(env)
        box = env.observation_space
        assert isinstance(box, spaces.Box) and len(box.shape) == 1
        self.cut = box.shape[0] // 2
        self.observation_space = spaces.Dict(
            {
                "head": spaces.Box(box.low[: self.cut], box.high[: self.cut], dtype=box.dtype),
                "tail": spaces.Box(box.low[self.cut :], box.high[self.cut :], dtype=box.dtype),
            }
        )

    def observation(self, observation):
        return {"head": observation[: self.cut], "tail": observation[self.cut :]}


class DictAgents(ParallelEnv):
    """Two agents that observe a Dict: multi-agent algorithms must refuse it by name."""

    metadata = {"name": "dict_agents"}  # noqa: RUF012 (a plain attribute in the base class)
    possible_agents = ["a", "b"]  # noqa: RUF012 (a plain attribute in the base class)

    def observation_space(self, agent):
        return spaces.Dict({"x": spaces.Box(-1, 1, (2,), np.float32)})

    def action_space(self, agent):
        return spaces.Discrete(2)


def swarm(**extra) -> gym.Env:
    """A small Swarm2D arena as one joint env: 2 teams of 2 agents, 2 resources, 16 steps."""
    return gym.make(
        "Swarm2D-v0", num_teams=2, agents_per_team=2, num_resources=2, num_heavy=0, max_cycles=16, **extra
    )


SINGLE_AGENT_ENVS: list[Callable[[], gym.Env]] = [
    lambda: gym.make("CartPole-v1"),
    lambda: gym.make("Pendulum-v1", max_episode_steps=50),
    lambda: gym.make("AssistGrid-v0", map_name="line", max_steps=2),
]


@dataclass
class Case:
    """One (algorithm, policy) pair and how to build its env and a small model."""

    algo: type[BaseAlgorithm]
    policy: str
    make_env: Callable[[], gym.Env]

    @property
    def id(self) -> str:
        return f"{self.algo.__name__}-{self.policy}"

    def vec_env(self, n_envs: int = 1) -> VecEnv:
        return DummyVecEnv([self.make_env for _ in range(n_envs)])

    def model_view(self, n_envs: int) -> VecEnv:
        """``n_envs`` env copies as the algorithm sees them (agent slots, image transposition...)."""
        model = self.algo(self.policy, self.vec_env(n_envs), _init_setup_model=False, **small_settings(self.algo, self.policy))
        return model.get_env()

    def model(self, env: Any = None, **overrides: Any) -> BaseAlgorithm:
        kwargs = {**small_settings(self.algo, self.policy), **overrides}
        return self.algo(self.policy, self.vec_env() if env is None else env, **kwargs)


def base_env(algo: type[BaseAlgorithm]) -> Callable[[], gym.Env]:
    """The env an algorithm is tested on: see the module docstring."""
    if is_multi_agent(algo):
        return swarm
    for make_env in SINGLE_AGENT_ENVS:
        try:
            algo("MlpPolicy", DummyVecEnv([make_env]), **small_settings(algo, "MlpPolicy"))
        except (ValueError, AssertionError, TypeError):
            continue
        return make_env
    raise AssertionError(f"{algo.__name__} accepts none of the contract suite's envs; add one it can learn on")


def policy_env(make_env: Callable[[], gym.Env], policy: str) -> Callable[[], gym.Env]:
    """The base env adapted to a policy: images for ``CnnPolicy``, a Dict for ``MultiInputPolicy``."""
    if policy == "CnnPolicy":
        discrete = isinstance(make_env().action_space, spaces.Discrete)
        return lambda: FakeImageEnv(screen_height=36, screen_width=36, n_channels=1, discrete=discrete)
    if policy == "MultiInputPolicy":
        return lambda: HalvedDictObservation(make_env())
    return make_env


def init_parameters(cls: type) -> set[str]:
    """Keyword names a class's constructor takes, following ``**kwargs`` up the MRO."""
    names: set[str] = set()
    for klass in cls.__mro__:
        if "__init__" not in vars(klass):
            continue
        parameters = inspect.signature(klass.__init__).parameters.values()
        names |= {p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
        if not any(p.kind is p.VAR_KEYWORD for p in parameters):
            break
    return names


def small_settings(algo: type[BaseAlgorithm], policy: str) -> dict[str, Any]:
    """Tiny networks and budgets, given only where the algorithm and its policy take them."""
    wanted: dict[str, Any] = dict(learning_starts=64, buffer_size=2_000, batch_size=32, seed=0, device="cpu")
    if issubclass(algo, OnPolicyAlgorithm):  # n_steps is the rollout length here, not n-step returns
        wanted.update(n_steps=32, n_epochs=2)
    settings = {key: value for key, value in wanted.items() if key in init_parameters(algo)}
    policy_class = algo.policy_aliases[policy]
    tiny_network = dict(net_arch=[16], critic_hidden_dim=16, nca_hidden_dim=8)
    if policy == "CnnPolicy":
        tiny_network["features_extractor_kwargs"] = dict(features_dim=16)
    settings["policy_kwargs"] = {k: v for k, v in tiny_network.items() if k in init_parameters(policy_class)}
    return settings


def all_cases() -> list[Case]:
    cases = []
    for algo in ALGORITHMS:
        make_env = base_env(algo)
        for policy in algo.policy_aliases:
            cases.append(Case(algo, policy, policy_env(make_env, policy)))
    return cases


CASES = all_cases()
DEFAULT_POLICY_CASES = [case for case in CASES if case.policy == "MlpPolicy"]


def case_ids(cases: list[Case]) -> list[str]:
    return [case.id for case in cases]


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """Tiny networks gain nothing from a second thread, and on a busy machine lose a lot."""
    threads = th.get_num_threads()
    th.set_num_threads(1)
    yield
    th.set_num_threads(threads)


# --- helpers ------------------------------------------------------------------------------------


def observations(env: VecEnv, n_resets: int = 3) -> Any:
    """A batch of observations the env really produces: a reset, then random steps."""
    env.seed(1)
    batches = [env.reset()]
    for _ in range(n_resets - 1):
        batches.append(env.step(np.stack([env.action_space.sample() for _ in range(env.num_envs)]))[0])
    if isinstance(batches[0], dict):
        return {key: np.concatenate([b[key] for b in batches]) for key in batches[0]}
    return np.concatenate(batches)


def take(obs: Any, rows: slice) -> Any:
    return {key: value[rows] for key, value in obs.items()} if isinstance(obs, dict) else obs[rows]


def agents_per_copy(model: BaseAlgorithm) -> int:
    """Rows of a batch that belong together: one copy's agents for multi-agent algorithms."""
    from sb3_ext.multiagent.vec import agent_slots_of

    slots = agent_slots_of(model.get_env()) if model.get_env() is not None else None
    return 1 if slots is None else slots.n_agents


def optimizers(model: BaseAlgorithm) -> list[th.optim.Optimizer]:
    """Every optimizer the model steps: on the algorithm itself and on any module of its policy."""
    found = [value for value in vars(model).values() if isinstance(value, th.optim.Optimizer)]
    for module in model.policy.modules():
        optimizer = getattr(module, "optimizer", None)
        if isinstance(optimizer, th.optim.Optimizer) and all(optimizer is not f for f in found):
            found.append(optimizer)
    return found


def learning_rates(model: BaseAlgorithm) -> list[float]:
    return [group["lr"] for optimizer in optimizers(model) for group in optimizer.param_groups]


def assert_same_parameters(first: BaseAlgorithm, second: BaseAlgorithm) -> None:
    one, two = first.get_parameters(), second.get_parameters()
    assert one.keys() == two.keys()
    for name in one:
        if "optim" in name:
            continue
        for key, tensor in one[name].items():
            assert th.equal(tensor, two[name][key]), f"{name}.{key} changed through save/load"


# --- learn, save, load: the trained models are shared by the tests below ---------------------

FRESH_LOADER = """
import json, sys
import numpy as np
import sb3_ext

folder, cases = sys.argv[1], json.loads(sys.argv[2])
actions = {}
for case_id, class_name in cases.items():
    model = getattr(sb3_ext, class_name).load(f"{folder}/{case_id}.zip", device="cpu")
    obs = dict(np.load(f"{folder}/{case_id}-obs.npz"))
    obs = obs["obs"] if list(obs) == ["obs"] else obs
    actions[case_id] = model.predict(obs, deterministic=True)[0]
np.savez(f"{folder}/fresh.npz", **actions)
"""


@dataclass
class Trained:
    model: BaseAlgorithm
    path: Path
    obs: Any
    actions: np.ndarray


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict[str, Trained]:
    """Every case learned ``LEARN_STEPS`` steps and saved, with a batch of observations and actions."""
    folder = tmp_path_factory.mktemp("contract")
    runs = {}
    for case in CASES:
        model = case.model()
        model.learn(LEARN_STEPS)
        obs = observations(case.model_view(2))
        actions, _ = model.predict(obs, deterministic=True)
        path = folder / f"{case.id}.zip"
        model.save(path)
        np.savez(folder / f"{case.id}-obs.npz", **(obs if isinstance(obs, dict) else {"obs": obs}))
        runs[case.id] = Trained(model, path, obs, actions)
    return runs


@pytest.fixture(scope="module")
def fresh_process_actions(trained) -> dict[str, np.ndarray]:
    """The saved models loaded in one fresh Python process, acting on the same observations."""
    folder = next(iter(trained.values())).path.parent
    cases = {case.id: case.algo.__name__ for case in CASES}
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    subprocess.run([sys.executable, "-c", FRESH_LOADER, str(folder), json.dumps(cases)], check=True, env=env)
    return dict(np.load(folder / "fresh.npz"))


def test_every_exported_algorithm_is_in_the_suite():
    names = {algo.__name__ for algo in ALGORITHMS}
    # The package's algorithms at the time of writing; new ones join by being exported.
    assert {"TwinDQN", "QuantileDQN", "DelayedTD3", "REINFORCE", "SharedActor", "MAAC", "Phase2"} <= names
    assert {case.algo for case in CASES} == set(ALGORITHMS)


@pytest.mark.parametrize("case", CASES, ids=case_ids(CASES))
def test_save_load_in_the_same_process_keeps_parameters_and_actions(case, trained):
    run = trained[case.id]
    loaded = case.algo.load(run.path, env=case.vec_env(), device="cpu")
    assert type(loaded.policy) is type(run.model.policy)
    assert loaded.num_timesteps == run.model.num_timesteps >= LEARN_STEPS
    assert_same_parameters(run.model, loaded)
    np.testing.assert_array_equal(loaded.predict(run.obs, deterministic=True)[0], run.actions)
    loaded.learn(64, reset_num_timesteps=False)  # training goes on from the loaded state
    assert loaded.num_timesteps >= run.model.num_timesteps + 64


@pytest.mark.parametrize("case", CASES, ids=case_ids(CASES))
def test_a_fresh_process_loads_the_same_actions(case, trained, fresh_process_actions):
    np.testing.assert_array_equal(fresh_process_actions[case.id], trained[case.id].actions)


@pytest.mark.parametrize("case", CASES, ids=case_ids(CASES))
def test_predict_is_deterministic_and_batched(case, trained):
    run = trained[case.id]
    model = run.model
    again, _ = model.predict(run.obs, deterministic=True)
    np.testing.assert_array_equal(again, run.actions)
    assert model.action_space.contains(np.asarray(run.actions[0]).astype(model.action_space.dtype))
    # The batch acts as its pieces do: one row at a time, or one copy's agents at a time.
    unit = agents_per_copy(model)
    n_rows = len(run.actions)
    pieces = [model.predict(take(run.obs, slice(i, i + unit)), deterministic=True)[0] for i in range(0, n_rows, unit)]
    np.testing.assert_allclose(np.concatenate(pieces), run.actions, rtol=1e-5, atol=1e-6)
    if unit == 1:  # a single unbatched observation gives a single unbatched action
        single = take(run.obs, 0) if not isinstance(run.obs, dict) else {k: v[0] for k, v in run.obs.items()}
        action, _ = model.predict(single, deterministic=True)
        np.testing.assert_allclose(action, run.actions[0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("case", DEFAULT_POLICY_CASES, ids=case_ids(DEFAULT_POLICY_CASES))
def test_set_env_takes_another_copy_and_learning_goes_on(case, trained):
    model = trained[case.id].model
    steps = model.num_timesteps
    other = case.vec_env()
    model.set_env(other)
    assert model.get_env() is not None
    model.learn(64, reset_num_timesteps=False)
    assert model.num_timesteps >= steps + 64


@pytest.mark.parametrize("case", DEFAULT_POLICY_CASES, ids=case_ids(DEFAULT_POLICY_CASES))
def test_several_envs(case):
    model = case.model(env=case.vec_env(2))
    model.learn(128)
    assert model.num_timesteps >= 128
    assert model.n_envs == 2 * agents_per_copy(model)


@pytest.mark.parametrize("algo", ALGORITHMS, ids=[a.__name__ for a in ALGORITHMS])
def test_dict_observations_train_or_are_refused_by_name(algo):
    if "MultiInputPolicy" in algo.policy_aliases:
        return  # the MultiInputPolicy cases above learn, save and load on a Dict env
    case = next(case for case in CASES if case.algo is algo)
    env = DictAgents() if is_multi_agent(algo) else DummyVecEnv([lambda: HalvedDictObservation(case.make_env())])
    with pytest.raises(ValueError, match="Dict"):
        algo("MlpPolicy", env, **small_settings(algo, "MlpPolicy"))


@pytest.mark.parametrize("case", DEFAULT_POLICY_CASES, ids=case_ids(DEFAULT_POLICY_CASES))
def test_tensorboard_run_is_named_after_the_algorithm(case, tmp_path):
    model = case.model(tensorboard_log=str(tmp_path))
    model.learn(64)
    model.learn(64, reset_num_timesteps=False)
    runs = sorted(path.name for path in tmp_path.iterdir())
    assert runs == [f"{case.algo.__name__}_1"]
    assert any((tmp_path / runs[0]).glob("events.out.tfevents.*"))


@pytest.mark.parametrize("case", DEFAULT_POLICY_CASES, ids=case_ids(DEFAULT_POLICY_CASES))
def test_custom_objects_on_load_apply_a_new_learning_rate(case, trained):
    path = trained[case.id].path
    kept = case.algo.load(path, env=case.vec_env(), device="cpu")
    old = kept.learning_rate
    new = old * 0.37
    changed = case.algo.load(path, env=case.vec_env(), device="cpu", custom_objects={"learning_rate": new})
    assert changed.learning_rate == new and changed.lr_schedule(1.0) == pytest.approx(new)
    # Same saved state, same steps: every optimizer's rate is the old run's rate scaled by new/old.
    for model in (kept, changed):
        model.learn(64, reset_num_timesteps=False)
    rates_kept, rates_changed = learning_rates(kept), learning_rates(changed)
    assert rates_kept, "no optimizer found"
    np.testing.assert_allclose(rates_changed, np.asarray(rates_kept) * (new / old), rtol=1e-6)


@pytest.mark.parametrize("algo", ALGORITHMS, ids=[a.__name__ for a in ALGORITHMS])
def test_signature_is_explicit_and_documented(algo):
    """SB3's rule: every argument in the signature (no ``**kwargs``) and in a docstring.

    The zoo checks YAML hyperparameter names against this signature, so a hidden argument would
    escape that check. An inherited argument may be documented on the base class that defines it.
    """
    parameters = inspect.signature(algo.__init__).parameters.values()
    assert not [p.name for p in parameters if p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL)]
    docs = "".join(klass.__doc__ or "" for klass in algo.__mro__)
    undocumented = [p.name for p in parameters if p.name != "self" and f":param {p.name}:" not in docs]
    assert not undocumented, f"{algo.__name__}: no ':param' for {undocumented}"


@pytest.mark.parametrize("algo", ALGORITHMS, ids=[a.__name__ for a in ALGORITHMS])
def test_the_zoo_names_a_misspelt_hyperparameter(algo):
    from sb3_ext.zoo.config import ZooUsageError, check_hyperparameter_names

    check_hyperparameter_names({"learning_rate": 1e-3, "policy": "MlpPolicy"}, algo, "algo.yml", "Env-v0")
    with pytest.raises(ZooUsageError, match=r"unknown hyperparameter 'learning_rat'.*did you mean 'learning_rate'"):
        check_hyperparameter_names({"learning_rat": 1e-3}, algo, "algo.yml", "Env-v0")
