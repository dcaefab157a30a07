"""Exploration noise whose scale decays over training.

Both classes subclass SB3's own noise processes and only move their ``_sigma`` along a schedule
before each draw, so SB3's sampling code (and its ``VectorizedActionNoise`` for ``n_envs > 1``)
is used unchanged. They therefore work wherever SB3 takes an ``action_noise``: DDPG, TD3, SAC and
DelayedTD3.

The clock is the number of draws the process has made. SB3 draws one sample per environment
step (during the ``learning_starts`` warm-up too, where it perturbs uniform actions), so
``decay_steps`` counts environment steps of one environment: with ``n_envs`` environments each
env's copy of the noise decays over ``decay_steps`` of its own steps. The counter is a plain attribute: it is
pickled with the model's ``.zip`` and survives save/load, and ``reset()`` (called by SB3 at
every episode end) leaves it alone.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, DTypeLike
from stable_baselines3.common.noise import (
    ActionNoise,
    NormalActionNoise,
    OrnsteinUhlenbeckActionNoise,
    VectorizedActionNoise,
)

ScheduleKind = Literal["linear", "exponential"]
NOISE_KINDS = ("normal", "ornstein-uhlenbeck")


class SigmaSchedule:
    """Sigma as a function of the step: ``initial_sigma`` at 0, ``final_sigma`` from ``decay_steps`` on.

    ``linear`` interpolates arithmetically, ``exponential`` geometrically
    (``initial * (final / initial) ** (step / decay_steps)``, a constant decay factor per step).

    :param initial_sigma: scale at step 0 (scalar or one value per action dimension)
    :param final_sigma: scale reached at ``decay_steps`` and kept afterwards
    :param decay_steps: length of the decay, in draws
    :param schedule: ``"linear"`` or ``"exponential"``
    """

    def __init__(
        self,
        initial_sigma: ArrayLike,
        final_sigma: ArrayLike,
        decay_steps: int,
        schedule: ScheduleKind = "linear",
    ) -> None:
        self.initial_sigma = np.asarray(initial_sigma, dtype=np.float64)
        self.final_sigma = np.asarray(final_sigma, dtype=np.float64)
        if schedule not in ("linear", "exponential"):
            raise ValueError(f"schedule={schedule!r}: expected 'linear' or 'exponential'")
        if int(decay_steps) != decay_steps or decay_steps < 1:
            raise ValueError(f"decay_steps={decay_steps!r}: expected a positive integer")
        if np.any(self.initial_sigma < 0) or np.any(self.final_sigma < 0):
            raise ValueError(f"initial_sigma={initial_sigma!r}, final_sigma={final_sigma!r}: expected values >= 0")
        if schedule == "exponential" and (np.any(self.initial_sigma == 0) or np.any(self.final_sigma == 0)):
            raise ValueError("an exponential schedule needs initial_sigma > 0 and final_sigma > 0")
        self.decay_steps = int(decay_steps)
        self.schedule = schedule

    def __call__(self, step: int) -> np.ndarray:
        fraction = min(step / self.decay_steps, 1.0)
        if self.schedule == "linear":
            return self.initial_sigma + fraction * (self.final_sigma - self.initial_sigma)
        return self.initial_sigma * (self.final_sigma / self.initial_sigma) ** fraction

    def __repr__(self) -> str:
        return (
            f"SigmaSchedule({self.initial_sigma} -> {self.final_sigma} over {self.decay_steps} steps, "
            f"{self.schedule})"
        )


class _ScheduledSigma:
    """Mixin for an SB3 noise: before each draw, set ``_sigma`` from the schedule and advance the clock.

    It must come before the SB3 noise class in the bases so that its ``__call__`` wraps theirs.
    """

    sigma_schedule: SigmaSchedule
    steps: int
    _mu: np.ndarray
    _sigma: np.ndarray

    @property
    def sigma(self) -> np.ndarray:
        """The scale the next draw will use."""
        return np.broadcast_to(self.sigma_schedule(self.steps), np.shape(self._mu))

    def __call__(self) -> np.ndarray:
        self._sigma = self.sigma
        self.steps += 1
        return super().__call__()  # type: ignore[misc]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(mu={self._mu}, {self.sigma_schedule}, steps={self.steps})"


class DecayingNormalActionNoise(_ScheduledSigma, NormalActionNoise):
    """Gaussian action noise whose standard deviation follows a :class:`SigmaSchedule`.

    :param mean: mean of the noise, one value per action dimension
    :param initial_sigma: standard deviation of the first draw
    :param final_sigma: standard deviation from ``decay_steps`` draws on
    :param decay_steps: number of draws over which sigma decays
    :param schedule: ``"linear"`` or ``"exponential"``
    :param dtype: dtype of the returned noise
    """

    def __init__(
        self,
        mean: np.ndarray,
        initial_sigma: ArrayLike,
        final_sigma: ArrayLike,
        decay_steps: int,
        schedule: ScheduleKind = "linear",
        dtype: DTypeLike = np.float32,
    ) -> None:
        self.sigma_schedule = SigmaSchedule(initial_sigma, final_sigma, decay_steps, schedule)
        self.steps = 0
        super().__init__(mean=mean, sigma=np.broadcast_to(self.sigma_schedule(0), np.shape(mean)), dtype=dtype)


class DecayingOrnsteinUhlenbeckActionNoise(_ScheduledSigma, OrnsteinUhlenbeckActionNoise):
    """Ornstein-Uhlenbeck action noise whose diffusion scale follows a :class:`SigmaSchedule`.

    :param mean: mean the process reverts to, one value per action dimension
    :param initial_sigma: diffusion scale of the first draw
    :param final_sigma: diffusion scale from ``decay_steps`` draws on
    :param decay_steps: number of draws over which sigma decays
    :param schedule: ``"linear"`` or ``"exponential"``
    :param theta: rate of mean reversion
    :param dt: time step of the process
    :param initial_noise: value the process restarts from at each reset (zeros if None)
    :param dtype: dtype of the returned noise
    """

    def __init__(
        self,
        mean: np.ndarray,
        initial_sigma: ArrayLike,
        final_sigma: ArrayLike,
        decay_steps: int,
        schedule: ScheduleKind = "linear",
        theta: float = 0.15,
        dt: float = 1e-2,
        initial_noise: np.ndarray | None = None,
        dtype: DTypeLike = np.float32,
    ) -> None:
        self.sigma_schedule = SigmaSchedule(initial_sigma, final_sigma, decay_steps, schedule)
        self.steps = 0
        super().__init__(
            mean=mean,
            sigma=np.broadcast_to(self.sigma_schedule(0), np.shape(mean)),
            theta=theta,
            dt=dt,
            initial_noise=initial_noise,
            dtype=dtype,
        )


def make_decaying_noise(
    noise_type: str,
    n_actions: int,
    initial_sigma: float,
    final_sigma: float,
    decay_steps: int,
    schedule: ScheduleKind = "linear",
    theta: float | None = None,
    dt: float | None = None,
) -> ActionNoise:
    """Build a decaying noise from plain values, the way rl-zoo3 builds its ``noise_type`` noises.

    :param noise_type: ``"normal"`` or ``"ornstein-uhlenbeck"`` (rl-zoo3's names)
    :param n_actions: dimension of the action space
    :param theta: Ornstein-Uhlenbeck mean reversion (None: the process's default)
    :param dt: Ornstein-Uhlenbeck time step (None: the process's default)
    """
    mean = np.zeros(n_actions)
    # Only the values given, so that the process keeps its own defaults for the others.
    ou_kwargs: dict[str, Any] = {key: value for key, value in (("theta", theta), ("dt", dt)) if value is not None}
    if noise_type == "normal":
        if ou_kwargs:
            raise ValueError(f"{sorted(ou_kwargs)}: only the 'ornstein-uhlenbeck' noise takes theta/dt")
        return DecayingNormalActionNoise(mean, initial_sigma, final_sigma, decay_steps, schedule)
    if noise_type == "ornstein-uhlenbeck":
        return DecayingOrnsteinUhlenbeckActionNoise(mean, initial_sigma, final_sigma, decay_steps, schedule, **ou_kwargs)
    raise ValueError(f"noise_type={noise_type!r}: expected one of {NOISE_KINDS}")


def current_noise_sigma(noise: ActionNoise | None) -> float | None:
    """Mean sigma the noise will use for its next draw (averaged over envs), or None if unknown.

    Works for SB3's fixed noises too (their ``_sigma``), so ``train/noise_sigma`` can be logged for
    any noise a model carries.
    """
    if noise is None:
        return None
    if isinstance(noise, VectorizedActionNoise):
        sigmas = [current_noise_sigma(each) for each in noise.noises]
        known = [sigma for sigma in sigmas if sigma is not None]
        return float(np.mean(known)) if known else None
    sigma = getattr(noise, "sigma", getattr(noise, "_sigma", None))
    return None if sigma is None else float(np.mean(sigma))
