"""Earlier import path of :class:`~sb3_ext.aux_heads.AuxPPO`, kept working; the code lives in :mod:`sb3_ext.aux_heads`."""

from sb3_ext.aux_heads import AuxPPO, AuxiliaryActorCriticPolicy

__all__ = ["AuxPPO", "AuxiliaryActorCriticPolicy"]
