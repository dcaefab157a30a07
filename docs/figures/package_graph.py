"""Draw docs/package_graph.png: which feature package of ``sb3_ext`` imports which.

    python docs/figures/package_graph.py

The graph is read from the code, never written by hand: every ``import`` and ``from ... import``
statement under ``sb3_ext/`` (imports inside functions included: the package imports lazily to
stay cheap), resolved to the feature package it names. A feature package is a top-level
subpackage (``common``, ``curriculum``, ``maac``, ...) or, for ``envs``, one environment family
(``envs.lattice``, ``envs.assist``, ``envs.swarm``); the top-level command modules (``train``,
``enjoy``, ``record_video``) are one node. ``sb3_ext/__init__.py``, which names every public class
for lazy import, is left out: it would point at everything.

An edge A -> B means "A imports B". It is drawn dashed when every import behind it sits in a
module that only re-exports names (docstring, imports and ``__all__``, nothing defined): an old
import path or a facade kept for users, not code that uses B. A package made only of such
modules is drawn with a dashed outline.

Layout: layers by dependency depth (a package sits one layer above the deepest package it
imports; packages that import no other are at the bottom), ordered within a layer to keep edges
short (barycentre sweeps), so the picture reads bottom-up from shared code to entry points.
"""

from __future__ import annotations

import argparse
import ast
import itertools
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch, Patch

REPOSITORY = Path(__file__).resolve().parents[2]
PACKAGE_ROOT = REPOSITORY / "sb3_ext"
OUTPUT = REPOSITORY / "docs" / "package_graph.png"
PACKAGE = "sb3_ext"
# Subpackages whose own subpackages are separate features (unrelated environment families).
SPLIT = frozenset({"envs"})
ENTRY_POINTS = "train / enjoy / record_video"

# Colour groups of the legend; a package missing here is drawn as "other" (the graph itself
# never depends on this table).
GROUPS: dict[str, tuple[str, ...]] = {
    "single-agent algorithms": ("reinforce", "twin_dqn", "quantile_dqn", "delayed_td3", "aux_heads", "aux_ppo", "aux_a2c"),
    "multi-agent": ("multiagent", "shared_actor", "maac", "nca", "envs.swarm"),
    "lattice growth": ("envs.lattice", "curriculum"),
    "Phase 2": ("phase2", "envs.assist"),
    "training tools": ("callbacks", "data", "rlhf", "noise"),
    "shared code and CLIs": ("common", "zoo", "envs", ENTRY_POINTS),
}
COLOURS = {
    "single-agent algorithms": "#8ecae6",
    "multi-agent": "#b5e48c",
    "lattice growth": "#ffd166",
    "Phase 2": "#f4a3a8",
    "training tools": "#cdb4db",
    "shared code and CLIs": "#dddddd",
    "other": "#ffffff",
}


@dataclass
class PackageGraph:
    """Feature packages and their imports.

    :param packages: every feature package found, with or without edges.
    :param edges: ``(importer, imported)`` pairs, each with ``True`` when at least one import
        behind it is in a module that uses what it imports (not a pure re-export).
    :param reexport_only: packages made only of re-export modules.
    """

    packages: set[str] = field(default_factory=set)
    edges: dict[tuple[str, str], bool] = field(default_factory=dict)
    reexport_only: set[str] = field(default_factory=set)

    def add_edge(self, importer: str, imported: str, uses: bool) -> None:
        self.edges[importer, imported] = self.edges.get((importer, imported), False) or uses


def module_name(path: Path, root: Path) -> str:
    """``root/curriculum/cli.py`` -> ``sb3_ext.curriculum.cli`` (``__init__.py`` names its package)."""
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def feature_of(module: str, top_modules: frozenset[str], packages: frozenset[str]) -> str | None:
    """The feature package a module belongs to; ``None`` for the package root and modules outside it.

    :param top_modules: the package's top-level modules (``sb3_ext.train``, ...): the entry-point node.
    :param packages: dotted names of every (sub)package, to tell ``envs.lattice`` from ``envs.registration``.
    """
    parts = module.split(".")
    if parts[0] != PACKAGE or len(parts) == 1:
        return None
    if module in top_modules:
        return ENTRY_POINTS
    if parts[1] in SPLIT and len(parts) > 2 and ".".join(parts[:3]) in packages:
        return f"{parts[1]}.{parts[2]}"
    return parts[1]


def imported_modules(tree: ast.Module, module: str, is_package: bool, known: set[str]) -> Iterator[str]:
    """Absolute names of the modules that ``tree`` (the code of ``module``) imports."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the importing module's package
                anchor = module.split(".") if is_package else module.split(".")[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, node.module] if node.module else anchor)
            else:
                base = node.module or ""
            for alias in node.names:
                # ``from sb3_ext.envs import lattice`` imports the submodule, not the parent.
                candidate = f"{base}.{alias.name}"
                yield candidate if candidate in known else base


def is_reexport(tree: ast.Module) -> bool:
    """True for a module that defines nothing: only a docstring, imports and ``__all__``."""
    for statement in tree.body:
        if isinstance(statement, (ast.Import, ast.ImportFrom)):
            continue
        if isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant):
            continue  # the docstring
        targets = statement.targets if isinstance(statement, ast.Assign) else []
        if len(targets) == 1 and isinstance(targets[0], ast.Name) and targets[0].id == "__all__":
            continue
        return False
    return True


def package_graph(root: Path = PACKAGE_ROOT) -> PackageGraph:
    """The feature-package import graph of the package whose folder is ``root``."""
    files = sorted(root.rglob("*.py"))
    known = {module_name(path, root) for path in files}
    top_modules = frozenset(module_name(path, root) for path in files if path.parent == root and path.name != "__init__.py")
    packages = frozenset(module_name(path, root) for path in files if path.name == "__init__.py")
    graph = PackageGraph()
    modules_of: dict[str, list[bool]] = {}
    for path in files:
        module = module_name(path, root)
        feature = feature_of(module, top_modules, packages)
        if feature is None:
            continue  # the package root: its table names every public class
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        reexport = is_reexport(tree)
        graph.packages.add(feature)
        modules_of.setdefault(feature, []).append(reexport)
        for imported in imported_modules(tree, module, path.name == "__init__.py", known):
            target = feature_of(imported, top_modules, packages)
            if target is not None and target != feature:
                graph.add_edge(feature, target, uses=not reexport)
    graph.reexport_only = {feature for feature, flags in modules_of.items() if all(flags)}
    return graph


def layers(graph: PackageGraph) -> list[list[str]]:
    """Packages by dependency depth, bottom layer first.

    A package sits one layer above the deepest package it imports, then moves up to just below
    the lowest package importing it, so that it is drawn near its users rather than on the floor.
    Where imports form a cycle, a re-export edge gives way to the edge that uses the package, and
    members of a cycle of uses share a layer.
    """

    def reach(start: str, depends: dict[str, set[str]]) -> set[str]:
        seen: set[str] = set()
        stack = [start]
        while stack:
            for nxt in depends[stack.pop()] - seen:
                seen.add(nxt)
                stack.append(nxt)
        return seen

    uses = {p: {b for (a, b), used in graph.edges.items() if a == p and used} for p in graph.packages}
    reaches_by_use = {p: reach(p, uses) for p in graph.packages}
    depends = {p: {b for (a, b) in graph.edges if a == p and p not in reaches_by_use[b]} | uses[p] for p in graph.packages}
    importers = {p: {a for a in graph.packages if p in depends[a]} for p in graph.packages}
    reachable = {p: reach(p, depends) for p in graph.packages}
    depth: dict[str, int] = {}

    def level(package: str) -> int:
        if package not in depth:
            below = [d for d in depends[package] if package not in reachable[d]]  # not its cycle partners
            depth[package] = 1 + max((level(d) for d in below), default=-1)
        return depth[package]

    for package in sorted(graph.packages):
        level(package)
    for package in sorted(graph.packages, key=lambda p: -depth[p]):
        above = [depth[i] for i in importers[package] if depth[i] > depth[package]]
        if above:
            depth[package] = min(above) - 1
    rows: list[list[str]] = [[] for _ in range(max(depth.values(), default=0) + 1)]
    for package in sorted(graph.packages):
        rows[depth[package]].append(package)
    return [row for row in rows if row]


@dataclass
class Layout:
    """Where :func:`draw` puts things: a centre per package and, per edge, the points it bends at."""

    centres: dict[str, tuple[float, float]]
    routes: dict[tuple[str, str], list[tuple[float, float]]]
    width: float
    n_rows: int


ROW_HEIGHT, BOX_SLOT, BEND_SLOT = 1.5, 1.0, 0.3


def layout(graph: PackageGraph, sweeps: int = 16) -> Layout:
    """Sugiyama-style layout: layers from :func:`layers`, an invisible bend point on every layer
    an edge crosses (so long edges run between boxes, not through them), each layer ordered by
    the median position of its neighbours, sweeping down and up, then every entry placed as near
    the mean of its neighbours as that order and the spacing allow."""
    rows = layers(graph)
    row_of = {p: r for r, row in enumerate(rows) for p in row}
    neighbours: dict[str, list[str]] = {p: [] for p in graph.packages}
    chains: dict[tuple[str, str], list[str]] = {}
    for a, b in sorted(graph.edges):
        step = -1 if row_of[b] < row_of[a] else 1
        chain = [f"{a}>{b}@{r}" for r in range(row_of[a] + step, row_of[b], step)]
        for r, bend in zip(range(row_of[a] + step, row_of[b], step), chain, strict=True):
            rows[r].append(bend)
        chains[a, b] = chain
        path = [a, *chain, b]
        for u, v in itertools.pairwise(path):
            neighbours.setdefault(u, []).append(v)
            neighbours.setdefault(v, []).append(u)

    def size(item: str) -> float:
        return BEND_SLOT if ">" in item else BOX_SLOT

    def packed(row: list[str]) -> dict[str, float]:
        """Side by side in ``row``'s order, centred on 0."""
        total = sum(size(item) for item in row)
        left = [sum(size(item) for item in row[:i]) for i in range(len(row))]
        return {item: start + size(item) / 2 - total / 2 for item, start in zip(row, left, strict=True)}

    def barycentre(item: str, at: dict[str, float]) -> float:
        linked = neighbours[item]
        return sum(at[n] for n in linked) / len(linked) if linked else at[item]

    def median(item: str, at: dict[str, float]) -> float:
        linked = sorted(at[n] for n in neighbours[item])
        return (linked[(len(linked) - 1) // 2] + linked[len(linked) // 2]) / 2 if linked else at[item]

    # 1. Order within layers: sort by the neighbours' median position, sweeping down and up.
    x: dict[str, float] = {}
    for row in rows:
        x.update(packed(row))
    for sweep in range(sweeps):
        for r in range(len(rows)) if sweep % 2 == 0 else range(len(rows) - 1, -1, -1):
            at = dict(x)
            rows[r].sort(key=lambda item: median(item, at))
            x.update(packed(rows[r]))
    # 2. Coordinates: each entry as near its neighbours' mean as the order and the spacing allow.
    for sweep in range(sweeps):
        for r in range(len(rows)) if sweep % 2 == 0 else range(len(rows) - 1, -1, -1):
            x.update(nearest_spaced(rows[r], [barycentre(item, x) for item in rows[r]], [size(i) for i in rows[r]]))
    low = min(x[item] - size(item) / 2 for row in rows for item in row)
    x = {item: value - low for item, value in x.items()}
    width = max(x[item] + size(item) / 2 for row in rows for item in row)
    centres = {p: (x[p], row_of[p] * ROW_HEIGHT) for p in graph.packages}
    routes = {
        edge: [(x[bend], int(bend.rsplit("@", 1)[1]) * ROW_HEIGHT) for bend in chain] for edge, chain in chains.items()
    }
    return Layout(centres, routes, width, len(rows))


def nearest_spaced(row: list[str], wanted: list[float], sizes: list[float]) -> dict[str, float]:
    """Positions for ``row`` in its order, no two entries overlapping (each ``sizes`` wide), as
    close to ``wanted`` as possible in the least-squares sense: with the offsets taken out, an
    isotonic regression, solved by pooling adjacent violators."""
    offsets = [sum(sizes[:i]) + sizes[i] / 2 for i in range(len(row))]
    blocks: list[list[float]] = []  # [mean, weight] of pooled runs
    for value in (w - o for w, o in zip(wanted, offsets, strict=True)):
        blocks.append([value, 1.0])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            mean, weight = blocks.pop()
            blocks[-1] = [(blocks[-1][0] * blocks[-1][1] + mean * weight) / (blocks[-1][1] + weight), blocks[-1][1] + weight]
    shifted = [mean for mean, weight in blocks for _ in range(int(weight))]
    return {item: s + o for item, s, o in zip(row, shifted, offsets, strict=True)}


def group_of(package: str) -> str:
    return next((name for name, members in GROUPS.items() if package in members), "other")


def draw(graph: PackageGraph, output: Path) -> None:
    """The layered picture of ``graph`` into ``output`` (PNG)."""
    placed = layout(graph)
    box_w, box_h = 0.86, 0.42
    figure, axis = plt.subplots(figsize=(1.25 * placed.width + 1.0, 1.15 * placed.n_rows + 1.6))
    for (a, b), uses in sorted(graph.edges.items()):
        (xa, ya), (xb, yb) = placed.centres[a], placed.centres[b]
        if (b, a) in graph.edges and not uses:  # the back edge of a pair: beside, not on top of, the other
            xa, xb = xa + 0.12, xb + 0.12
        if ya == yb:  # members of an import cycle on one layer: a bow above the boxes
            points = [(xa, ya + box_h / 2), ((xa + xb) / 2, ya + box_h), (xb, yb + box_h / 2)]
        else:
            down = yb < ya
            points = [(xa, ya - box_h / 2 if down else ya + box_h / 2), *placed.routes[a, b],
                      (xb, yb + box_h / 2 if down else yb - box_h / 2)]  # fmt: skip
        style: dict[str, Any] = dict(
            color="#555555" if uses else "#8a8a8a", linewidth=0.9, alpha=0.8, linestyle="-" if uses else (0, (3, 2))
        )
        xs, ys = zip(*points, strict=True)
        axis.plot(xs[:-1], ys[:-1], zorder=1, **style)
        axis.add_patch(FancyArrowPatch(points[-2], points[-1], arrowstyle="-|>", mutation_scale=10, shrinkA=0, shrinkB=1,
                                       zorder=1, **style))  # fmt: skip
    for package, (x, y) in placed.centres.items():
        axis.add_patch(FancyBboxPatch(
            (x - box_w / 2, y - box_h / 2), box_w, box_h, boxstyle="round,pad=0.02,rounding_size=0.08",
            facecolor=COLOURS[group_of(package)], edgecolor="#333333", linewidth=0.9,
            linestyle=(0, (3, 2)) if package in graph.reexport_only else "-", zorder=2,
        ))  # fmt: skip
        label = package.replace(" / ", "/\n") if package == ENTRY_POINTS else package
        axis.text(x, y, label, ha="center", va="center", fontsize=8.5, zorder=3)
    used_groups = sorted({group_of(p) for p in graph.packages}, key=list(COLOURS).index)
    handles = [Patch(facecolor=COLOURS[g], edgecolor="#333333", label=g) for g in used_groups]
    handles.append(Patch(facecolor="white", edgecolor="#333333", linestyle=(0, (3, 2)), label="re-exports only (old path)"))
    axis.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=4, fontsize=8, frameon=False)
    axis.set_xlim(-0.1, placed.width + 0.1)
    axis.set_ylim(-0.5, (placed.n_rows - 1) * ROW_HEIGHT + 0.5)
    axis.axis("off")
    axis.set_title("sb3_ext feature packages: an arrow A → B means A imports B (dashed: re-export only)", fontsize=10)
    figure.tight_layout()
    edges = "; ".join(f"{a}->{b}" for a, b in sorted(graph.edges))
    figure.savefig(output, dpi=110, metadata={"Description": f"edges: {edges}"})
    plt.close(figure)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=OUTPUT, help=f"PNG to write (default {OUTPUT})")
    args = parser.parse_args(argv)
    graph = package_graph()
    draw(graph, args.output)
    print(f"written: {args.output} ({len(graph.packages)} packages, {len(graph.edges)} edges)")
    for a, b in sorted(graph.edges):
        print(f"  {a} -> {b}{'' if graph.edges[a, b] else '  (re-export)'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
