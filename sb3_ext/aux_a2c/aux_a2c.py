"""Earlier import path of :class:`~sb3_ext.aux_heads.AuxA2C`, kept working."""

from sb3_ext.aux_heads.aux_a2c import AuxA2C

__all__ = ["AuxA2C"]
