"""``python -m sb3_ext.zoo.custom_envs [DIR]``: make plain ``python -m rl_zoo3.train`` see sb3-ext.

rl-zoo3 runs ``import custom_envs`` (inside a ``try``) when any of its scripts starts
(``rl_zoo3/import_envs.py``). This command writes a two-line ``custom_envs.py`` that calls
:func:`sb3_ext.zoo.registry.register_zoo`, by default into the site-packages of the Python that
runs it, so every rl-zoo3 command of that environment knows our algorithms and environments.
Pass a directory to write it elsewhere (it must then be on ``PYTHONPATH``, or be the directory
``python -m rl_zoo3.train`` is started from). rl-zoo3 still reads hyperparameters from its own
folder, so give ours explicitly: ``--conf-file`` the package's ``sb3_ext/hyperparams/<algo>.yml``
(its path: ``python -c "from sb3_ext.zoo.config import HYPERPARAMS_DIR; print(HYPERPARAMS_DIR)"``).
"""

from __future__ import annotations

import argparse
import sys
import sysconfig
from pathlib import Path

from sb3_ext.common.atomic import atomic_write_text
from sb3_ext.zoo.config import ZooUsageError

MARKER = "# Written by `python -m sb3_ext.zoo.custom_envs`."
MODULE_TEXT = f'''{MARKER}
"""Imported by rl-zoo3 at start-up (rl_zoo3/import_envs.py): registers sb3-ext's algorithms."""
from sb3_ext.zoo.registry import register_zoo

register_zoo()
'''


def write_custom_envs(directory: Path, force: bool = False) -> Path:
    """Write ``custom_envs.py`` into ``directory`` atomically; never clobber someone else's."""
    target = directory / "custom_envs.py"
    if target.exists() and MARKER not in target.read_text() and not force:
        raise ZooUsageError(f"{target}: exists and was not written by sb3-ext (use --force to replace it)")
    atomic_write_text(target, MODULE_TEXT)
    return target


def main(argv: list[str] | None = None) -> None:
    """Entry point of ``python -m sb3_ext.zoo.custom_envs``."""
    parser = argparse.ArgumentParser(prog="python -m sb3_ext.zoo.custom_envs", description=__doc__.split("\n")[0])
    parser.add_argument(
        "directory",
        nargs="?",
        type=Path,
        default=Path(sysconfig.get_paths()["purelib"]),
        help="where to write custom_envs.py (default: this Python's site-packages)",
    )
    parser.add_argument("--force", action="store_true", help="replace a custom_envs.py not written by sb3-ext")
    args = parser.parse_args(argv)
    try:
        print(write_custom_envs(args.directory, args.force))
    except (ZooUsageError, OSError) as error:
        print(f"{parser.prog}: error: {error}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
