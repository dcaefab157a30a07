"""The package picture (docs/figures/package_graph.py) draws the imports the code really has.

On a small package written here the computed graph is exactly the one its imports make; on
sb3_ext itself it holds edges we know of, every edge it has is backed by an import line found
by a plain text search, and every edge of use points down in the layered picture.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def script():
    path = REPOSITORY / "docs" / "figures" / "package_graph.py"
    spec = importlib.util.spec_from_file_location("package_graph", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_graph_of_a_small_package_is_exactly_its_imports(script, tmp_path):
    write(tmp_path, {
        "sb3_ext/__init__.py": "from sb3_ext.alpha import A\n",  # the root: left out
        "sb3_ext/alpha/__init__.py": "from sb3_ext.alpha.core import A\n",  # inside its own package
        "sb3_ext/alpha/core.py": "import numpy\nfrom sb3_ext.beta.tools import f\n\nclass A:\n    pass\n",
        "sb3_ext/beta/__init__.py": "",
        # A lazy import inside a function, naming a submodule with `from package import name`.
        "sb3_ext/beta/tools.py": "def f():\n    from sb3_ext.envs import gamma\n    return gamma\n",
        "sb3_ext/envs/__init__.py": "",
        "sb3_ext/envs/registration.py": "import sb3_ext.beta.tools\n\ndef register():\n    pass\n",
        # A module path in a string is not an import.
        "sb3_ext/envs/gamma/__init__.py": 'ENTRY = "sb3_ext.alpha.core:A"\n\ndef g():\n    pass\n',
        "sb3_ext/old/__init__.py": '"""Old path."""\n\nfrom sb3_ext.alpha import A\n\n__all__ = ["A"]\n',
        "sb3_ext/train.py": "from sb3_ext.beta.tools import f\n\ndef main():\n    f()\n",
    })  # fmt: skip
    graph = script.package_graph(tmp_path / "sb3_ext")
    entry = script.ENTRY_POINTS
    assert graph.packages == {"alpha", "beta", "envs", "envs.gamma", "old", entry}
    assert graph.edges == {
        ("alpha", "beta"): True,
        ("beta", "envs.gamma"): True,
        ("envs", "beta"): True,  # envs/registration.py belongs to envs, not to a family of its own
        ("old", "alpha"): False,  # re-export only
        (entry, "beta"): True,
    }
    assert graph.reexport_only == {"old"}
    rows = script.layers(graph)
    row_of = {p: r for r, row in enumerate(rows) for p in row}
    assert row_of["alpha"] > row_of["beta"] > row_of["envs.gamma"]


@pytest.fixture(scope="module")
def real_graph(script):
    return script.package_graph()


def test_known_edges_of_sb3_ext(script, real_graph):
    known = {
        ("maac", "multiagent"),
        ("shared_actor", "multiagent"),
        ("curriculum", "envs.lattice"),
        ("envs.assist", "phase2"),
        ("delayed_td3", "noise"),
        (script.ENTRY_POINTS, "zoo"),
    }
    assert known <= set(real_graph.edges)
    assert real_graph.edges["curriculum", "envs.lattice"] is True
    # Shared code does not reach up into the features built on it; nothing imports the commands.
    assert not {b for (a, b), uses in real_graph.edges.items() if a == "common" and uses}
    assert not [a for (a, b) in real_graph.edges if b == script.ENTRY_POINTS]


def test_every_edge_of_sb3_ext_has_an_import_line(script, real_graph):
    root = REPOSITORY / "sb3_ext"
    for importer, imported in real_graph.edges:
        if importer == script.ENTRY_POINTS:
            files = [p for p in root.glob("*.py") if p.name != "__init__.py"]
        else:
            files = list((root / importer.replace(".", "/")).rglob("*.py"))
            if not files:  # a top-level module rather than a folder
                files = [root / f"{importer}.py"]
        line = re.compile(rf"^\s*(from|import)\s+sb3_ext\.{re.escape(imported)}\b", re.MULTILINE)
        assert any(line.search(path.read_text()) for path in files), f"no import of {imported} in {importer}"


def test_every_edge_of_use_points_down(script, real_graph):
    rows = script.layers(real_graph)
    row_of = {p: r for r, row in enumerate(rows) for p in row}
    for (importer, imported), uses in real_graph.edges.items():
        if uses and (imported, importer) not in real_graph.edges:
            assert row_of[importer] > row_of[imported], (importer, imported)


def test_script_writes_the_picture(script, tmp_path):
    output = tmp_path / "graph.png"
    assert script.main(["--output", str(output)]) == 0
    assert output.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
