"""Team selection: one SB3 model per team, each seeing only its team's slots, in the same episodes.

:class:`TeamSplit` cuts an agent-slot VecEnv into one VecEnv per team. The team VecEnvs move in
lockstep: the shared env advances once every team still training has handed in its actions
(``step_async``), and each ``step_wait`` returns that team's slice of the result. Each model runs
its own, unmodified SB3 ``learn()``; :func:`learn_teams` runs them in one thread each (torch
releases the GIL in its kernels, so the threads overlap). When a model's ``learn()`` ends before
the others', its team keeps acting with that model's ``predict`` so the others are not blocked.

Stepping the team VecEnvs by hand from one thread also works: call ``step_async`` on every team
first, then ``step_wait``.
"""

from __future__ import annotations

import threading
from typing import Any
from collections.abc import Callable, Sequence

import numpy as np
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.vec_env import VecEnv
from stable_baselines3.common.vec_env.base_vec_env import (
    VecEnvIndices,
    VecEnvStepReturn,
)

from sb3_ext.multiagent.vec import agent_slots_of, slot_observations

Policy = Callable[[np.ndarray], np.ndarray]
# One step of an agent-slot VecEnv: observations, rewards, dones, infos (one row per slot).
SlotStep = tuple[np.ndarray, np.ndarray, np.ndarray, list[dict[str, Any]]]


class TeamSplit:
    """Cut an agent-slot VecEnv into one lockstep VecEnv per team.

    :param venv: a VecEnv with agent slots (``make_swarm2d_vec_env``, ``make_parallel_vec_env``...).
    :param timeout: seconds a team waits for the others before giving up with an error.
    """

    def __init__(self, venv: VecEnv, timeout: float = 600.0) -> None:
        slots = agent_slots_of(venv)
        if slots is None:
            raise ValueError("TeamSplit: the env has no agent slots; build it with make_swarm2d_vec_env or "
                             "make_parallel_vec_env")  # fmt: skip
        self.venv = venv
        self.timeout = timeout
        team_of_slot = np.asarray(slots.agent_teams)[np.arange(venv.num_envs) % slots.n_agents]
        self.teams = sorted(set(slots.agent_teams))
        action_shape = venv.action_space.shape
        assert action_shape is not None, "agent slots act in a Box or Discrete space (agent_space)"
        self._action_shape: tuple[int, ...] = action_shape
        self.slots = {team: np.flatnonzero(team_of_slot == team) for team in self.teams}
        self._condition = threading.Condition()
        self._pending: dict[int, np.ndarray] = {}
        self._submitted_at: dict[int, int] = {}  # step count when each team last submitted
        self._fallbacks: dict[int, Policy] = {}
        self._training = set(self.teams)
        self._last_obs: np.ndarray | None = None
        self._result: SlotStep | None = None
        self.n_steps = 0  #: steps of the shared env so far

    def team_env(self, team: int) -> TeamVecEnv:
        """The VecEnv of ``team``'s slots."""
        if team not in self.slots:
            raise ValueError(f"TeamSplit: team={team!r}, expected one of {self.teams}")
        return TeamVecEnv(self, team)

    def reset(self, team: int) -> np.ndarray:
        """The team's current observations; the shared env is reset only the first time.

        Later resets (a second ``learn()``) must not cut the other teams' episodes short.
        """
        with self._condition:
            if self._last_obs is None:
                self._last_obs = slot_observations(self.venv.reset())
            return self._last_obs[self.slots[team]]

    def submit(self, team: int, actions: np.ndarray) -> None:
        with self._condition:
            self._pending[team] = np.asarray(actions)
            self._submitted_at[team] = self.n_steps

    def wait(self, team: int) -> VecEnvStepReturn:
        """Block until the shared env has taken the step ``team`` submitted to; return its slice."""
        with self._condition:
            step = self._submitted_at[team]
            self._advance_if_ready()
            if not self._condition.wait_for(lambda: self.n_steps > step, timeout=self.timeout):
                waiting = sorted(self._training - set(self._pending))
                raise TimeoutError(f"TeamSplit: team {team} waited {self.timeout} s for teams {waiting} to act; "
                                   "is every team's model stepping its team env (see learn_teams)?")  # fmt: skip
            assert self._result is not None, "the wait above returns only after a step"
            obs, rewards, dones, infos = self._result
            slots = self.slots[team]
            return obs[slots], rewards[slots], dones[slots], [infos[i] for i in slots]

    def retire(self, team: int, policy: Policy) -> None:
        """``team`` stops training; from now on ``policy(obs) -> actions`` acts for it."""
        with self._condition:
            self._training.discard(team)
            self._fallbacks[team] = policy
            self._advance_if_ready()

    def enlist(self) -> None:
        """Every team trains again (the start of a new round of ``learn_teams``)."""
        with self._condition:
            self._training = set(self.teams)
            self._fallbacks.clear()

    def _advance_if_ready(self) -> None:
        """Step the shared env once every training team has submitted (caller holds the lock)."""
        if not self._training or not self._training <= set(self._pending):
            return
        assert self._last_obs is not None, "TeamSplit: reset() the team envs before stepping them"
        actions = np.zeros((self.venv.num_envs, *self._action_shape), self.venv.action_space.dtype)
        for team, slots in self.slots.items():
            actions[slots] = self._pending[team] if team in self._training else self._fallbacks[team](self._last_obs[slots])
        obs, rewards, dones, infos = self.venv.step(actions)
        self._last_obs = slot_observations(obs)
        self._result = (self._last_obs, rewards, dones, infos)
        self._pending.clear()
        self.n_steps += 1
        self._condition.notify_all()


class TeamVecEnv(VecEnv):
    """The slots of one team of a :class:`TeamSplit`, as an SB3 VecEnv (see the module docstring)."""

    def __init__(self, split: TeamSplit, team: int) -> None:
        self.split, self.team = split, team
        self._slots = split.slots[team]
        super().__init__(len(self._slots), split.venv.observation_space, split.venv.action_space)

    def reset(self) -> np.ndarray:
        self._reset_seeds()  # the shared env is seeded where it was made
        self._reset_options()
        return self.split.reset(self.team)

    def step_async(self, actions: np.ndarray) -> None:
        self.split.submit(self.team, actions)

    def step_wait(self) -> VecEnvStepReturn:
        return self.split.wait(self.team)

    def close(self) -> None:
        """The shared env belongs to the split; closing one team's view leaves it open."""

    def _shared_indices(self, indices: VecEnvIndices) -> list[int]:
        return [int(self._slots[i]) for i in self._get_indices(indices)]

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        return self.split.venv.get_attr(attr_name, self._shared_indices(indices))

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        self.split.venv.set_attr(attr_name, value, self._shared_indices(indices))

    def env_method(self, method_name: str, *method_args, indices: VecEnvIndices = None, **method_kwargs) -> list[Any]:
        return self.split.venv.env_method(
            method_name, *method_args, indices=self._shared_indices(indices), **method_kwargs
        )

    def env_is_wrapped(self, wrapper_class: type, indices: VecEnvIndices = None) -> list[bool]:
        return self.split.venv.env_is_wrapped(wrapper_class, self._shared_indices(indices))


def learn_teams(split: TeamSplit, models: Sequence[BaseAlgorithm], total_timesteps: int, **learn_kwargs: Any) -> None:
    """Run ``models[k].learn(total_timesteps)`` for every team ``k`` of ``split`` at the same time.

    ``models[k]`` must have been built on ``split.team_env(split.teams[k])``. The first error of
    any model is raised once every thread has finished.
    """
    if len(models) != len(split.teams):
        raise ValueError(f"learn_teams: {len(models)} models for {len(split.teams)} teams")
    split.enlist()
    errors: list[BaseException] = []

    def train(team: int, model: BaseAlgorithm) -> None:
        try:
            model.learn(total_timesteps, **learn_kwargs)
        except BaseException as error:
            errors.append(error)
        finally:
            split.retire(team, lambda obs: model.predict(obs, deterministic=False)[0])

    threads = [threading.Thread(target=train, args=(team, model)) for team, model in zip(split.teams, models, strict=False)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
