"""Callbacks for exploration noise: log its current sigma, or install a decaying one from a zoo YAML.

rl-zoo3 reads its YAML with ``yaml.safe_load`` and builds the noise itself from
``noise_type``/``noise_std`` (any ``noise_type`` containing ``"normal"`` becomes a fixed
``NormalActionNoise``), so a YAML file cannot name a noise class. It can name a callback with
keyword arguments, which is what :class:`DecayingNoise` is::

    callback:
      - sb3_ext.callbacks.DecayingNoise:
          noise_type: ornstein-uhlenbeck
          initial_sigma: 0.5
          final_sigma: 0.05
          decay_steps: 100000
"""

from __future__ import annotations

from typing import Any

from gymnasium import spaces
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.noise import VectorizedActionNoise

from sb3_ext.noise.processes import (
    DecayingNormalActionNoise,
    DecayingOrnsteinUhlenbeckActionNoise,
    ScheduleKind,
    current_noise_sigma,
    make_decaying_noise,
)


class NoiseSigmaLogger(BaseCallback):
    """Record the sigma of the model's action noise as ``train/noise_sigma`` after every step.

    Works with any SB3 noise (fixed ones log a constant). Recording is a dict write; the logger
    only emits the last value at each dump, so logging every step costs nothing measurable.
    """

    def _on_step(self) -> bool:
        sigma = current_noise_sigma(getattr(self.model, "action_noise", None))
        if sigma is not None:
            self.logger.record("train/noise_sigma", sigma)
        return True


class DecayingNoise(NoiseSigmaLogger):
    """Give an off-policy model a decaying action noise at training start, and log its sigma.

    Meant for rl-zoo3 YAML files (see the module docstring); in Python, passing a
    :class:`~sb3_ext.noise.processes.DecayingNormalActionNoise` as ``action_noise`` is simpler.
    The noise is built once: a second ``learn()`` call keeps the decayed process. Leave out
    ``noise_type``/``noise_std`` from the same YAML entry: a model that already has a noise is
    refused rather than silently overridden.

    :param noise_type: ``"normal"`` or ``"ornstein-uhlenbeck"``
    :param initial_sigma: scale at the first step
    :param final_sigma: scale from ``decay_steps`` on
    :param decay_steps: environment steps (per environment) over which the scale decays
    :param schedule: ``"linear"`` or ``"exponential"``
    :param theta: Ornstein-Uhlenbeck mean reversion rate (only for that noise)
    :param dt: Ornstein-Uhlenbeck time step (only for that noise)
    """

    def __init__(
        self,
        noise_type: str = "normal",
        initial_sigma: float = 0.3,
        final_sigma: float = 0.05,
        decay_steps: int = 100_000,
        schedule: ScheduleKind = "linear",
        theta: float | None = None,
        dt: float | None = None,
        verbose: int = 0,
    ) -> None:
        super().__init__(verbose)
        self.noise_kwargs: dict[str, Any] = {
            "noise_type": noise_type,
            "initial_sigma": initial_sigma,
            "final_sigma": final_sigma,
            "decay_steps": decay_steps,
            "schedule": schedule,
            "theta": theta,
            "dt": dt,
        }
        # Build a throw-away instance now so that a bad YAML value fails before training starts.
        make_decaying_noise(n_actions=1, **self.noise_kwargs)
        self._installed = False

    def _on_training_start(self) -> None:
        if self._installed:
            return
        action_space = self.model.action_space
        if not isinstance(action_space, spaces.Box):
            raise ValueError(f"DecayingNoise: action noise needs a Box action space, got {action_space}")
        existing = getattr(self.model, "action_noise", None)
        if isinstance(existing, VectorizedActionNoise):
            existing = existing.base_noise
        if isinstance(existing, (DecayingNormalActionNoise, DecayingOrnsteinUhlenbeckActionNoise)):
            # A model loaded to continue training keeps the process it had decayed so far.
            self._installed = True
            return
        if existing is not None:
            raise ValueError(
                f"DecayingNoise: the model already has action_noise={self.model.action_noise!r}; "
                "remove noise_type/noise_std (or action_noise) so that only one noise is set"
            )
        noise = make_decaying_noise(n_actions=action_space.shape[0], **self.noise_kwargs)
        n_envs = self.training_env.num_envs
        # SB3 vectorises the noise in _setup_learn, which has already run: do it here instead.
        self.model.action_noise = VectorizedActionNoise(noise, n_envs) if n_envs > 1 else noise
        self._installed = True
