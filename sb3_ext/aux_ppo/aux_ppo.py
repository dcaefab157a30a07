"""Earlier import path of :class:`~sb3_ext.aux_heads.AuxPPO`, kept working."""

from sb3_ext.aux_heads.aux_ppo import AuxPPO

__all__ = ["AuxPPO"]
