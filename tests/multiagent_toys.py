"""Tiny PettingZoo envs with known answers, shared by the multi-agent tests."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from pettingzoo import ParallelEnv

from sb3_ext.zoo.config import HYPERPARAMS_DIR


class CountdownEnv(ParallelEnv):
    """Agents ``possible_agents``; the episode ends at step ``length``. Agents listed in
    ``terminating`` terminate there, the others are cut off by the time limit.

    Observation: (step, agent index). Reward of agent i: ``i + 10 * action`` (Discrete(2)).
    ``teams`` (optional) gives every agent a team, read by the SB3 adapter."""

    metadata = {"name": "countdown"}  # noqa: RUF012 (a plain attribute in the base class)

    def __init__(self, length: int = 3, terminating: tuple[str, ...] = (), teams: tuple[int, ...] | None = None):
        n_agents = 3 if teams is None else len(teams)
        self.possible_agents = ["a", "b", "c", "d", "e", "f"][:n_agents]
        self.length, self.terminating = length, terminating
        if teams is not None:
            self.agent_teams = dict(zip(self.possible_agents, teams, strict=False))
        self.agents: list[str] = []

    @functools.cache  # noqa: B019  (PettingZoo wants the same space object)
    def observation_space(self, agent):
        return spaces.Box(0, 100, (2,), np.float32)

    @functools.cache  # noqa: B019
    def action_space(self, agent):
        return spaces.Discrete(2)

    def _obs(self):
        return {a: np.array([self.t, i], np.float32) for i, a in enumerate(self.possible_agents)}

    def reset(self, seed=None, options=None):
        self.t, self.agents = 0, list(self.possible_agents)
        return self._obs(), {a: {} for a in self.agents}

    def step(self, actions):
        self.t += 1
        end = self.t >= self.length
        agents = self.agents
        if end:
            self.agents = []
        rewards = {a: float(i + 10 * actions[a]) for i, a in enumerate(agents)}
        term = {a: end and a in self.terminating for a in agents}
        trunc = {a: end and a not in self.terminating for a in agents}
        return self._obs(), rewards, term, trunc, {a: {} for a in agents}


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Small networks: extra torch threads only fight over the shared cores. Import this
    fixture into a test module to run its tests single-threaded."""
    threads = th.get_num_threads()
    th.set_num_threads(1)
    yield
    th.set_num_threads(threads)


def zoo_hyperparams(algo: str, env_id: str) -> tuple[str, dict, int]:
    """``sb3_ext/hyperparams/<algo>.yml``'s entry for ``env_id`` as rl-zoo3 reads it: the policy, the
    algorithm's keyword arguments (``policy_kwargs`` strings evaluated) and ``n_envs``."""
    import yaml

    with open(HYPERPARAMS_DIR / f"{algo}.yml") as file:
        entry = dict(yaml.safe_load(file)[env_id])
    policy, n_envs = entry.pop("policy"), entry.pop("n_envs", 1)
    entry.pop("n_timesteps")
    if isinstance(entry.get("policy_kwargs"), str):
        entry["policy_kwargs"] = eval(entry["policy_kwargs"])  # rl-zoo3 does the same
    return policy, entry, n_envs


def spread_summed_return(act, n_episodes: int = 50, seed: int = 1000) -> float:
    """Mean summed return of ``act(obs) -> actions`` over the first ``n_episodes`` episodes of
    mpe2 simple_spread_v3 (N=3, 25 cycles, continuous). The start states depend on ``seed``
    only, so two policies evaluated with one seed face the same episodes."""
    from mpe2 import simple_spread_v3

    from sb3_ext.multiagent.vec import make_parallel_vec_env

    env = make_parallel_vec_env(
        lambda: simple_spread_v3.parallel_env(N=3, max_cycles=25, continuous_actions=True), n_copies=10, seed=seed
    )
    obs, returns = env.reset(), []
    while len(returns) < n_episodes:
        obs, _, dones, infos = env.step(act(obs))
        returns += [info["episode"]["r"] for done, info in zip(dones, infos, strict=False) if done and "episode" in info]
    return float(np.mean(returns[:n_episodes]))


def random_spread_return() -> float:
    """:func:`spread_summed_return` of uniformly random actions (about -75)."""
    rng = np.random.default_rng(0)
    return spread_summed_return(lambda obs: rng.uniform(0, 1, (len(obs), 5)).astype(np.float32))
