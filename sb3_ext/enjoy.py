"""``python -m sb3_ext.enjoy`` (``sb3-ext-enjoy``): rl-zoo3's enjoy.py with sb3-ext registered.

Same flags as rl-zoo3's; two differences: ``--folder`` defaults to ``logs`` (where ``sb3-ext-train``
writes; rl-zoo3's default folder would try to download the agent from the Hugging Face hub), and
our off-policy algorithms load with a one-transition replay buffer, as rl-zoo3 does for its own.
"""

from __future__ import annotations

import argparse
import sys

import rl_zoo3.enjoy
from huggingface_sb3 import EnvironmentName
from rl_zoo3.utils import get_model_path

from sb3_ext.zoo.cli import peek_arguments, run_zoo_command
from sb3_ext.zoo.config import ZooUsageError

DEFAULT_FOLDER = "logs"


def with_default_folder(argv: list[str]) -> list[str]:
    """``argv`` with ``--folder logs`` added when the user gave no folder."""
    return argv if peek_arguments(argv).folder is not None else ["--folder", DEFAULT_FOLDER, *argv]


def check_trained_agents(peeked: argparse.Namespace) -> None:
    """One line instead of rl-zoo3's traceback when there is nothing to load (rl-zoo3's own look-up)."""
    try:
        get_model_path(
            peeked.exp_id,
            peeked.folder,
            peeked.algo,
            EnvironmentName(peeked.env),
            peeked.load_best,
            peeked.load_checkpoint,
            peeked.load_last_checkpoint,
        )
    except (AssertionError, ValueError) as error:
        raise ZooUsageError(f"--folder {peeked.folder!r}: {error}") from None


def main(argv: list[str] | None = None) -> None:
    """Entry point of ``sb3-ext-enjoy``."""
    argv = with_default_folder(list(sys.argv[1:] if argv is None else argv))
    run_zoo_command("sb3-ext-enjoy", argv, rl_zoo3.enjoy.enjoy, check=check_trained_agents, replaying=True)


if __name__ == "__main__":
    main()
