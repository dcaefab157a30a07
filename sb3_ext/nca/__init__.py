"""Neural-cellular-automaton networks: the shared core and an SB3 actor-critic policy."""

from sb3_ext.nca.core import NCACore
from sb3_ext.nca.policies import NCAExtractor, NCAPolicy

__all__ = ["NCACore", "NCAExtractor", "NCAPolicy"]
