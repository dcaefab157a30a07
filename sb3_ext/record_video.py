"""``python -m sb3_ext.record_video`` (``sb3-ext-record-video``): rl-zoo3's record_video with sb3-ext.

Same flags as rl-zoo3's script and the same two differences as :mod:`sb3_ext.enjoy` (``--folder``
defaults to ``logs``; our off-policy algorithms load with a one-transition buffer). Works offline:
frames come from the env's ``rgb_array`` rendering, the video is written by moviepy.
"""

from __future__ import annotations

import runpy
import sys

from sb3_ext.enjoy import check_trained_agents, with_default_folder
from sb3_ext.zoo.cli import run_zoo_command


def _record_video() -> None:
    # rl-zoo3 keeps this script's body under ``if __name__ == "__main__"``: run it as a script.
    runpy.run_module("rl_zoo3.record_video", run_name="__main__")


def main(argv: list[str] | None = None) -> None:
    """Entry point of ``sb3-ext-record-video``."""
    argv = with_default_folder(list(sys.argv[1:] if argv is None else argv))
    run_zoo_command("sb3-ext-record-video", argv, _record_video, check=check_trained_agents, replaying=True)


if __name__ == "__main__":
    main()
