"""AuxA2C: A2C with dynamics, behaviour-prior and offline-value auxiliary heads."""

from sb3_ext.aux_a2c.aux_a2c import AuxA2C
from sb3_ext.aux_heads.policies import AuxiliaryActorCriticPolicy

__all__ = ["AuxA2C", "AuxiliaryActorCriticPolicy"]
