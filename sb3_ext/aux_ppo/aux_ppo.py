"""AuxPPO: PPO with the auxiliary heads of :mod:`sb3_ext.aux_heads`."""

from __future__ import annotations

from typing import TypeVar

from stable_baselines3 import PPO
from stable_baselines3.common.type_aliases import MaybeCallback

from sb3_ext.aux_heads.mixin import AuxiliaryHeadsMixin

SelfAuxPPO = TypeVar("SelfAuxPPO", bound="AuxPPO")


class AuxPPO(AuxiliaryHeadsMixin, PPO):
    """PPO with a dynamics head, a behaviour prior fitted on offline data and offline value targets.

    See :class:`~sb3_ext.aux_heads.AuxiliaryHeadsMixin` for the auxiliary phase and its arguments;
    everything else is SB3's PPO. ``policy="MlpPolicy"`` means
    :class:`~sb3_ext.aux_heads.AuxiliaryActorCriticPolicy`.
    """

    def learn(
        self: SelfAuxPPO,
        total_timesteps: int,
        callback: MaybeCallback = None,
        log_interval: int = 1,
        tb_log_name: str = "AuxPPO",
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
    ) -> SelfAuxPPO:
        return super().learn(
            total_timesteps=total_timesteps,
            callback=callback,
            log_interval=log_interval,
            tb_log_name=tb_log_name,
            reset_num_timesteps=reset_num_timesteps,
            progress_bar=progress_bar,
        )
