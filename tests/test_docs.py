"""README and docs/ refer only to files that exist; the docs site builds with warnings as errors."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]
# Top-level folders of the checkout a page may name in a code span (`benchmarks/bench_x.py`).
CHECKOUT_FOLDERS = ("benchmarks/", "docs/", "experiments/", "sb3_ext/", "tests/")
MARKDOWN_LINK = re.compile(r"\]\(([^)\s]+)\)")
CODE_SPAN = re.compile(r"`([^`\n]+)`")
COMMAND_SCRIPT = re.compile(r"python (\S+\.py)")


def _relative_links(page: Path) -> list[str]:
    links = [target.split("#", 1)[0] for target in MARKDOWN_LINK.findall(page.read_text())]
    return [link for link in links if link and not re.match(r"[a-z]+:", link)]


def _named_paths(text: str) -> set[str]:
    """Paths inside the checkout named in code spans or ``python <script>.py`` commands."""
    names = set(COMMAND_SCRIPT.findall(text))
    for span in CODE_SPAN.findall(text):
        names.update(word for word in span.split() if word.startswith(CHECKOUT_FOLDERS))
    # Placeholders (`<key>`, `stage{1,2}`, globs) and run-time outputs name no single file.
    return {name.rstrip(".,;:)'\"") for name in names if not re.search(r"[<>{}*]|RUN/|run_", name)}


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(REPO)))
def test_every_link_and_named_path_exists(page: Path) -> None:
    missing = [link for link in _relative_links(page) if not (page.parent / link).exists()]
    missing += [name for name in _named_paths(page.read_text()) if not (REPO / name).exists()]
    assert not missing, f"{page.relative_to(REPO)} refers to files that do not exist: {sorted(set(missing))}"


def test_named_paths_are_found_and_missing_ones_reported(tmp_path: Path) -> None:
    text = "Run `python benchmarks/bench_lattice_engine.py` or `sb3_ext/nowhere.yml`; `sb3_ext/hyperparams/<key>.yml`."
    assert _named_paths(text) == {"benchmarks/bench_lattice_engine.py", "sb3_ext/nowhere.yml"}
    page = tmp_path / "page.md"
    page.write_text("[a](other.md) [b](https://example.org/x.md) [c](#anchor)")
    assert _relative_links(page) == ["other.md"]


@pytest.mark.skipif(importlib.util.find_spec("mkdocs") is None, reason="mkdocs is a dev dependency")
def test_the_docs_site_builds_strictly(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=REPO, capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "site" / "design" / "index.html").is_file()
