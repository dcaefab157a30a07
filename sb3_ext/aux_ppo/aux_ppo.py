"""AuxPPO: PPO with the auxiliary heads of :mod:`sb3_ext.aux_heads`."""

from __future__ import annotations

from stable_baselines3 import PPO

from sb3_ext.aux_heads.mixin import AuxiliaryHeadsMixin


class AuxPPO(AuxiliaryHeadsMixin, PPO):
    """PPO with a dynamics head, a behaviour prior fitted on offline data and offline value targets.

    See :class:`~sb3_ext.aux_heads.AuxiliaryHeadsMixin` for the auxiliary phase and its arguments;
    everything else is SB3's PPO. ``policy="MlpPolicy"`` means
    :class:`~sb3_ext.aux_heads.AuxiliaryActorCriticPolicy`.
    """
