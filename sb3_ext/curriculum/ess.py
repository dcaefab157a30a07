"""Early stopping on the effective sample size (ESS) that the lattice environment reports."""

from __future__ import annotations

import logging
import os

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback

from sb3_ext.curriculum.config import load_stage_config, stage_file

log = logging.getLogger(__name__)


class ESSEarlyStopping(BaseCallback):
    """Log the ESS of the biased KMC proposals and stop when it stays below a threshold.

    Every environment step's ``info["ess"]`` is collected. Every ``check_freq`` environment steps
    (counted over all parallel envs) the collected values are summarised as ``train/ess_mean``,
    ``train/ess_min`` and ``train/ess_max``. A check whose mean is below ``threshold`` counts
    against ``patience``; a check at or above it resets the count. After ``patience`` consecutive
    low checks training stops, and the figures are written to the log (logger ``sb3_ext``, which
    :class:`~sb3_ext.callbacks.RunArtifacts` copies into ``training.log``).

    A low ESS means the policy has pushed the dynamics far from physics, so that the trajectories
    it produces are no longer representative of real growth.

    :param threshold: minimum acceptable mean ESS, in (0, 1]; default 0.3, or the stage file's
        ``ess_threshold`` when ``stage`` is given.
    :param patience: number of consecutive low checks that stops training; default 10, or the
        stage file's ``ess_patience`` when ``stage`` is given.
    :param check_freq: environment steps (all envs together) between two checks.
    :param verbose: 1 to also print the stop message.
    :param stage: a curriculum stage number (1, 2, 3: the file shipped with the package) or the
        path of a stage file, whose ``ess_threshold`` and ``ess_patience`` apply where
        ``threshold`` and ``patience`` are not given (the zoo's ``LatticeGrowth-v0`` entry uses
        stage 1's this way instead of a copy).
    """

    def __init__(
        self,
        threshold: float | None = None,
        patience: int | None = None,
        check_freq: int = 1000,
        verbose: int = 0,
        stage: int | str | os.PathLike[str] | None = None,
    ):
        super().__init__(verbose=verbose)
        if stage is not None:
            config = load_stage_config(stage_file(stage))
            threshold = config.ess_threshold if threshold is None else threshold
            patience = config.ess_patience if patience is None else patience
        threshold = 0.3 if threshold is None else threshold
        patience = 10 if patience is None else patience
        if not 0.0 < threshold <= 1.0:
            raise ValueError(f"ESSEarlyStopping: threshold must be in (0, 1], got {threshold!r}")
        if patience < 1:
            raise ValueError(f"ESSEarlyStopping: patience must be >= 1, got {patience!r}")
        if check_freq < 1:
            raise ValueError(f"ESSEarlyStopping: check_freq must be >= 1, got {check_freq!r}")
        self.threshold = threshold
        self.patience = patience
        self.check_freq = check_freq
        self.checks_below = 0
        self.stopped = False
        self.stop_message = ""
        self._window: list[float] = []
        self._last_check = 0

    def _on_training_start(self) -> None:
        self._last_check = self.num_timesteps
        self._window.clear()

    def _on_step(self) -> bool:
        infos = self.locals["infos"]
        values = [info["ess"] for info in infos if "ess" in info]
        if not values:
            raise ValueError(
                "ESSEarlyStopping: the environment's step info has no 'ess' entry "
                "(use it with LatticeGrowth-v0 or an environment that reports ESS)"
            )
        self._window.extend(float(value) for value in values)
        if self.num_timesteps - self._last_check < self.check_freq:
            return True
        self._last_check = self.num_timesteps
        return self._check()

    def _check(self) -> bool:
        window = np.asarray(self._window)
        self._window.clear()
        mean, low, high = float(window.mean()), float(window.min()), float(window.max())
        self.logger.record("train/ess_mean", mean)
        self.logger.record("train/ess_min", low)
        self.logger.record("train/ess_max", high)
        self.checks_below = self.checks_below + 1 if mean < self.threshold else 0
        if self.checks_below < self.patience:
            return True
        self.stopped = True
        self.stop_message = (
            f"ESS early stop at step {self.num_timesteps}: mean ESS below {self.threshold:g} for "
            f"{self.checks_below} consecutive checks (last check: mean {mean:.3f}, min {low:.3f}, "
            f"max {high:.3f} over {window.size} steps)"
        )
        log.warning(self.stop_message)
        if self.verbose >= 1:
            print(self.stop_message)
        return False
