"""Text maps for the assistance gridworld.

A map is a rectangle of characters, one row per line:

====  ==========================================================
``#``  wall
``.``  floor
``R``  the robot (exactly one)
``H``  a human (one or more; numbered in reading order)
``o``  a rock (only the robot can push it)
``k``  the key (at most one; only the robot picks it up)
``D``  a locked door (the robot opens it by walking in with the key)
====  ==========================================================

Agents, rocks, the key and doors all stand on floor. Cells are ``(row, col)`` tuples.
"""

from __future__ import annotations

from dataclasses import dataclass

Cell = tuple[int, int]

_KNOWN = set("#.RHokD")


@dataclass(frozen=True)
class GridMap:
    """A parsed map: the static layout and where everything starts."""

    height: int
    width: int
    walls: frozenset[Cell]  # includes a ring just outside the rectangle
    robot: Cell
    humans: tuple[Cell, ...]
    rocks: tuple[Cell, ...]
    key: Cell | None
    doors: tuple[Cell, ...]

    @property
    def floor(self) -> tuple[Cell, ...]:
        """Every non-wall cell in reading order (the cells an observation encodes)."""
        return tuple(
            (r, c) for r in range(self.height) for c in range(self.width) if (r, c) not in self.walls
        )

    @classmethod
    def parse(cls, text: str) -> GridMap:
        """Parse a text map; raise ``ValueError`` naming the first problem found."""
        rows = [line.strip() for line in text.strip("\n").splitlines() if line.strip()]
        if not rows:
            raise ValueError("map: the text is empty, expected rows of '#.RHokD' characters")
        width = len(rows[0])
        cells: dict[str, list[Cell]] = {ch: [] for ch in _KNOWN}  # character -> its cells, in reading order
        for r, row in enumerate(rows):
            if len(row) != width:
                raise ValueError(f"map: row {r} has {len(row)} characters, expected {width} like row 0")
            for c, ch in enumerate(row):
                if ch not in _KNOWN:
                    raise ValueError(f"map: unknown character {ch!r} at row {r}, column {c}; expected one of '#.RHokD'")
                cells[ch].append((r, c))
        if len(cells["R"]) > 1:
            (r, c) = cells["R"][1]
            raise ValueError(f"map: a second robot at row {r}, column {c}; exactly one 'R' is expected")
        if len(cells["k"]) > 1:
            (r, c) = cells["k"][1]
            raise ValueError(f"map: a second key at row {r}, column {c}; at most one 'k' is expected")
        if not cells["R"]:
            raise ValueError("map: no robot, expected exactly one 'R'")
        if not cells["H"]:
            raise ValueError("map: no human, expected at least one 'H'")
        walls, humans, rocks, doors = set(cells["#"]), cells["H"], cells["o"], cells["D"]
        robot = cells["R"][0]
        key = cells["k"][0] if cells["k"] else None
        # A ring of wall just outside the rectangle: nothing ever leaves the map, even when
        # the text has no border of '#'.
        walls |= {(r, c) for r in (-1, len(rows)) for c in range(-1, width + 1)}
        walls |= {(r, c) for r in range(len(rows)) for c in (-1, width)}
        if doors and key is None:
            raise ValueError("map: locked doors 'D' but no key 'k' to open them")
        return cls(
            height=len(rows),
            width=width,
            walls=frozenset(walls),
            robot=robot,
            humans=tuple(humans),
            rocks=tuple(rocks),
            key=key,
            doors=tuple(doors),
        )


# Named layouts used by the env, the tests and the benchmark. ``goals`` are the humans' goal
# cells (one list per human); ``None`` means every floor cell is a goal. ``max_steps`` is the
# map's default horizon (8 where absent); the large maps need it to finish their detour.
MAPS: dict[str, dict] = {
    # 1-D: a corridor; a robot stepping left gets in the human's way.
    "line": {
        "text": """
            ######
            #H..R#
            ######
        """,
        "goals": None,
    },
    # A 3x3 room with the robot and human in opposite corners; every cell is a goal.
    "room3": {
        "text": """
            #####
            #H..#
            #...#
            #..R#
            #####
        """,
        "goals": None,
    },
    # The human is shut in by a rock. The robot can push the rock up into the niche, which
    # puts the robot itself in the doorway: it must then step back down to let the human out.
    "rock": {
        "text": """
            ######
            ##.###
            #Ho..#
            ##R###
            ######
        """,
        "goals": None,
    },
    # The human is locked in; the robot must fetch the key and open the door.
    "key_door": {
        "text": """
            ######
            #H.D.#
            ###.k#
            ###R##
            ######
        """,
        "goals": None,
    },
    # Large maps (horizon 16): the robot must plan a multi-step detour.
    # The human is locked in a room; the robot walks the lower corridor, fetches the key, opens
    # the door from outside, and must then step aside out of the doorway to let the human out.
    "key_door_big": {
        "text": """
            #########
            #H..D...#
            #...#.k.#
            #####.#.#
            #R......#
            #########
        """,
        "goals": None,
        "max_steps": 16,
    },
    # Two rocks shut the human in. The robot pushes each up into its niche from below, and
    # each push leaves it standing in the corridor, so it must step back down after each.
    "rocks": {
        "text": """
            #######
            ###.#.#
            #H.o.o#
            ###.#.#
            ###...#
            ###R###
        """,
        "goals": None,
        "max_steps": 16,
    },
    # Two humans at the two ends of one corridor, each wanting its own end, the other's end or
    # the middle: a rock in the middle shuts each in its half. The robot pushes it up into the
    # niche from the shaft below, then must clear the corridor and the shaft, the only place
    # where the humans can pass each other. Every cell is in some goal of each human, so none
    # is ever cut off from all its goals.
    "two_humans": {
        "text": """
            #########
            ####.####
            #H..o..H#
            ####.####
            ####R####
            #########
        """,
        "goals": [
            [[(2, 1), (2, 2), (2, 3)], [(2, 5), (2, 6), (2, 7)], [(1, 4), (2, 4), (3, 4), (4, 4)]],
            [[(2, 5), (2, 6), (2, 7)], [(2, 1), (2, 2), (2, 3)], [(1, 4), (2, 4), (3, 4), (4, 4)]],
        ],
        "max_steps": 16,
    },
}
