"""Phase 2: power-law robot assistance (``Phase2``, ``PowerLawPolicy``) and its exact solver."""

from sb3_ext.phase2.config import Phase2Config
from sb3_ext.phase2.phase2 import Phase2
from sb3_ext.phase2.policies import PowerLawPolicy

__all__ = ["Phase2", "Phase2Config", "PowerLawPolicy"]
