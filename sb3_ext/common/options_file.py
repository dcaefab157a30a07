"""``--config FILE``: a YAML file of a command's long options, read as if typed before the others."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml


def _long_options(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    options = {}
    for action in parser._actions:  # argparse has no public list of its actions
        for flag in action.option_strings:
            if flag.startswith("--") and not flag.startswith("--no-"):
                options[flag[2:]] = action
    return options


def options_file_arguments(
    path: str | Path, parser: argparse.ArgumentParser, exclude: tuple[str, ...] = ("config", "help")
) -> list[str]:
    """The command-line tokens a YAML options file stands for.

    Keys are long option names, with ``-`` or ``_`` (``eval-freq: 5000`` or ``eval_freq: 5000``);
    a switch takes ``true``/``false``. Putting the tokens before the real command line lets
    argparse check every value and lets flags typed on the command line win.

    :raises ValueError: one line naming the file and the key at fault
    """
    path = Path(path)
    try:
        content: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ValueError(f"--config {path}: cannot read it ({error.strerror})") from None
    except yaml.YAMLError as error:
        raise ValueError(f"--config {path}: not valid YAML ({str(error).splitlines()[0]})") from None
    if content is None:
        return []
    if not isinstance(content, dict):
        raise ValueError(f"--config {path}: expected a mapping of option names to values, got {type(content).__name__}")
    options = {name: action for name, action in _long_options(parser).items() if name not in exclude}
    tokens: list[str] = []
    for key, value in content.items():
        name = str(key).replace("_", "-")
        action = options.get(name)
        if action is None:
            raise ValueError(f"--config {path}: unknown option {key!r}; expected one of {', '.join(sorted(options))}")
        if action.nargs == 0:  # a switch: store_true / store_false / BooleanOptionalAction
            if not isinstance(value, bool):
                raise ValueError(f"--config {path}: {key} is a switch; expected true or false, got {value!r}")
            if isinstance(action, argparse.BooleanOptionalAction):
                tokens.append(f"--{name}" if value else f"--no-{name}")
            elif value == (action.const is True):
                tokens.append(f"--{name}")
            continue
        if isinstance(value, (dict, list)) or value is None:
            raise ValueError(f"--config {path}: {key} takes one value, got {value!r}")
        tokens.extend([f"--{name}", str(value)])
    return tokens


def parse_with_options_file(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """Parse ``argv``; when it names ``--config FILE``, parse the file's options first, then ``argv``."""
    args = parser.parse_args(argv)
    if getattr(args, "config", None) is None:
        return args
    try:
        tokens = options_file_arguments(args.config, parser)
    except ValueError as error:
        parser.error(str(error))
    return parser.parse_args([*tokens, *(argv if argv is not None else sys.argv[1:])])
