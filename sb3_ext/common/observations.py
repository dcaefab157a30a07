"""Checks on observation spaces that SB3 leaves to each algorithm."""

from __future__ import annotations

from typing import Any

from gymnasium import spaces


def refuse_dict_observations(algorithm: str, env: Any) -> None:
    """Raise a ``ValueError`` naming ``algorithm`` when ``env`` observes a Dict space.

    For algorithms without a ``MultiInputPolicy``: SB3's own check would tell the user to pass
    ``"MultiInputPolicy"``, which such an algorithm does not have. An env given by id is made
    later by SB3 and not checked here.
    """
    space = getattr(env, "observation_space", None)
    if isinstance(space, spaces.Dict):
        raise ValueError(
            f"{algorithm}: Dict observation spaces are not supported (it has no MultiInputPolicy); "
            f"got {space}. Flatten the observation, e.g. with gymnasium.wrappers.FlattenObservation"
        )
