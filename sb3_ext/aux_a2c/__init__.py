"""Earlier import path of :class:`~sb3_ext.aux_heads.AuxA2C`, kept working; the code lives in :mod:`sb3_ext.aux_heads`."""

from sb3_ext.aux_heads import AuxA2C, AuxiliaryActorCriticPolicy

__all__ = ["AuxA2C", "AuxiliaryActorCriticPolicy"]
