"""AuxA2C: A2C with the auxiliary heads of :mod:`sb3_ext.aux_heads`."""

from __future__ import annotations

from stable_baselines3 import A2C

from sb3_ext.aux_heads.mixin import AuxiliaryHeadsMixin


class AuxA2C(AuxiliaryHeadsMixin, A2C):
    """A2C with a dynamics head, a behaviour prior fitted on offline data and offline value targets.

    See :class:`~sb3_ext.aux_heads.AuxiliaryHeadsMixin`; everything else is SB3's A2C. The
    auxiliary phase uses the whole rollout as one minibatch unless ``aux_batch_size`` is given.
    """
