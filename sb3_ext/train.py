"""``python -m sb3_ext.train`` (``sb3-ext-train``): rl-zoo3's train.py with sb3-ext registered.

The flags are rl-zoo3's own (``python -m sb3_ext.train --help``). Differences are only in defaults
and checks, all in :class:`sb3_ext.zoo.experiment.SB3ExtExperimentManager`: ``--conf-file``
defaults to our ``sb3_ext/hyperparams/<algo>.yml``, ``--optimize`` stores its study in a journal file
unless ``--storage`` says otherwise, and bad input is one line on stderr.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import rl_zoo3.train

from sb3_ext.common.atomic import ensure_writable_folder
from sb3_ext.zoo.cli import run_zoo_command
from sb3_ext.zoo.config import ZooUsageError
from sb3_ext.zoo.experiment import SB3ExtExperimentManager


def check_log_folder(args: argparse.Namespace) -> None:
    """Refuse a log folder that cannot be written before training starts (rl-zoo3's default: ``logs``)."""
    folder = Path(args.folder or "logs")
    try:
        ensure_writable_folder(folder)
    except OSError as error:
        raise ZooUsageError(f"--log-folder {folder}: cannot write there ({error.strerror or error})") from None


def main(argv: list[str] | None = None) -> None:
    """Entry point of ``sb3-ext-train``."""
    # rl-zoo3's train() builds its ExperimentManager through this module-level name.
    rl_zoo3.train.ExperimentManager = SB3ExtExperimentManager  # type: ignore[misc]
    run_zoo_command("sb3-ext-train", list(sys.argv[1:] if argv is None else argv), rl_zoo3.train.train, check_log_folder)


if __name__ == "__main__":
    main()
