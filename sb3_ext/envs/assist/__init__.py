"""The assistance gridworld of Phase 2: maps, world model, goals, human prior and ``AssistGrid-v0``."""

from sb3_ext.envs.assist.goals import ReachGoal, make_goals
from sb3_ext.envs.assist.human_prior import BoltzmannHumanPrior
from sb3_ext.envs.assist.maps import MAPS, GridMap
from sb3_ext.envs.assist.world import ACTION_NAMES, N_ACTIONS, AssistWorld, GridState

__all__ = [
    "ACTION_NAMES",
    "MAPS",
    "N_ACTIONS",
    "AssistWorld",
    "BoltzmannHumanPrior",
    "GridMap",
    "GridState",
    "ReachGoal",
    "make_goals",
]
