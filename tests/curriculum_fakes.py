"""A tiny stand-in for LatticeGrowth-v0 with the same constructor and info keys, for plumbing tests.

No physics: "roughness" grows by noise and shrinks with the mean action, ESS falls with the
action's size (or cycles through ``ess_cycle``). ``signal_at_step`` makes the env send a
signal to its own process at that step, which exercises the real signal path in-process. It lets
the callback and runner tests control the figures the callbacks must log, and run in milliseconds.
"""

from __future__ import annotations

import os
import signal

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces

from sb3_ext.envs.lattice.env import LatticeGrowthEnv

FAKE_ENV_ID = "curriculum_fakes:FakeLattice-v0"


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Small MLPs on a shared 2-core machine: a second torch thread only adds contention.

    Import it into a test module (``from curriculum_fakes import one_torch_thread``) to apply it.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


class FakeLatticeEnv(gym.Env):
    """Constructor of LatticeGrowthEnv; per-step and episode-end infos of its contract."""

    def __init__(
        self,
        lattice_size=(8, 8, 5),
        temperature=600.0,
        deposition_rate=1.0,
        max_steps=10,
        n_swarm=2,
        n_proposals=4,
        reward_weights=None,
        ess_cycle: tuple[float, ...] | None = None,
        signal_at_step: int | None = None,
        signal_number: int = signal.SIGTERM,
    ):
        self.max_steps = max_steps
        self.ess_cycle = ess_cycle
        self.signal_at_step = signal_at_step
        self.signal_number = signal_number
        self._total_steps = 0
        self.observation_space = spaces.Box(-10.0, 10.0, shape=(4,), dtype=np.float32)
        self.action_space = spaces.Box(-2.0, 2.0, shape=(n_swarm,), dtype=np.float32)
        self._step = 0
        self._roughness = 0.0
        self._ess_sum = 0.0

    def _obs(self) -> np.ndarray:
        return np.array([self._roughness, self._step / self.max_steps, 1.0, 0.0], dtype=np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self._step, self._roughness, self._ess_sum = 0, float(self.np_random.uniform(0.0, 0.1)), 0.0
        return self._obs(), {}

    def step(self, action):
        action = np.clip(np.asarray(action, dtype=float), -2.0, 2.0)
        if self.ess_cycle is not None:
            ess = self.ess_cycle[self._total_steps % len(self.ess_cycle)]
        else:
            ess = float(np.exp(-0.5 * np.mean(action**2)))
        self._total_steps += 1
        if self._total_steps == self.signal_at_step:
            os.kill(os.getpid(), self.signal_number)
        previous = self._roughness
        self._roughness = max(0.0, self._roughness + self.np_random.uniform(0.0, 0.1) - 0.05 * float(np.mean(action)))
        self._step += 1
        self._ess_sum += ess
        coverage = min(1.0, self._step / 4)
        reward = -(self._roughness - previous) - 0.3 * self._roughness - 0.1 * max(0.0, 0.5 - ess)
        info = {
            "ess": ess,
            "roughness": self._roughness,
            "coverage": coverage,
            "time": float(self._step),
            "n_events": 4 * self._step,
            "mean_height": 0.5 * self._step,
        }
        truncated = self._step >= self.max_steps
        if truncated:
            info.update(final_roughness=self._roughness, final_coverage=coverage, mean_ess=self._ess_sum / self._step)
        return self._obs(), float(reward), False, truncated, info


if "FakeLattice-v0" not in gym.registry:
    gym.register("FakeLattice-v0", entry_point=FakeLatticeEnv)


class SignallingLatticeEnv(LatticeGrowthEnv):
    """The real LatticeGrowthEnv that sends ``signal_number`` to its own process at ``signal_at_step``.

    Under DummyVecEnv this delivers a real SIGTERM/SIGINT to the training process at a chosen
    step, so the interrupt path is tested without timing races.
    """

    def __init__(self, *args, signal_at_step: int = 0, signal_number: int = signal.SIGTERM, **kwargs):
        super().__init__(*args, **kwargs)
        self.signal_at_step = signal_at_step
        self.signal_number = signal_number
        self._total_steps = 0

    def step(self, action):
        self._total_steps += 1
        if self._total_steps == self.signal_at_step:
            os.kill(os.getpid(), self.signal_number)
        return super().step(action)


SIGNALLING_ENV_ID = "curriculum_fakes:SignallingLattice-v0"
if "SignallingLattice-v0" not in gym.registry:
    # Every instance (training and evaluation envs alike) signals at its 30th step.
    gym.register("SignallingLattice-v0", entry_point=SignallingLatticeEnv, kwargs={"signal_at_step": 30})
