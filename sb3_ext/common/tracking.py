"""Optional experiment tracking with Weights & Biases, the way rl-zoo3's ``--track`` does it.

rl-zoo3 starts a W&B run with ``sync_tensorboard=True`` before any model exists: every scalar
SB3 then writes to TensorBoard is mirrored into the run. We do the same, in **offline** mode by
default (nothing leaves the machine; ``wandb sync <dir>`` uploads later). W&B is an optional
extra (``pip install 'sb3-ext[track]'``); without it :func:`start_tracking` says so in one line.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

#: W&B modes we accept: offline (default, no network), online, disabled (a no-op run).
TRACKING_MODES = ("offline", "online", "disabled")


def start_tracking(directory: str | Path, project: str, config: dict[str, Any] | None = None, name: str | None = None,
                   mode: str = "offline") -> Any:
    """Start a W&B run mirroring TensorBoard, its files under ``directory/wandb``; returns the run.

    Call it before the models (and their TensorBoard writers) are created, and ``run.finish()``
    when training is over.

    :param directory: where W&B keeps the run's files (e.g. the training run's folder)
    :param project: W&B project name
    :param config: settings recorded with the run
    :param name: run name (default: W&B's)
    :param mode: one of :data:`TRACKING_MODES`
    """
    if mode not in TRACKING_MODES:
        raise ValueError(f"tracking mode {mode!r}: expected one of {', '.join(TRACKING_MODES)}")
    try:
        wandb = importlib.import_module("wandb")
    except ImportError:
        raise ValueError("experiment tracking needs Weights & Biases: pip install 'sb3-ext[track]' (or wandb)") from None
    Path(directory).mkdir(parents=True, exist_ok=True)
    return wandb.init(project=project, name=name, config=config or {}, dir=str(directory), mode=mode,
                      sync_tensorboard=True, reinit="finish_previous")
