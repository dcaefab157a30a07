"""``KEY=VALUE`` command-line settings shared by the benchmarks' ``--set``-style options."""

from __future__ import annotations

import argparse
import ast
from typing import Any


def parse_settings(parser: argparse.ArgumentParser, option: str, items: list[str]) -> dict[str, Any]:
    """``KEY=VALUE`` items (Python literals) as a dict; a malformed item is a usage error."""
    settings = {}
    for item in items:
        key, sep, value = item.partition("=")
        try:
            settings[key] = ast.literal_eval(value) if sep else None
        except (ValueError, SyntaxError):
            sep = ""
        if not sep:
            parser.error(f"{option} {item!r}: expected KEY=VALUE with a Python literal value")
    return settings
