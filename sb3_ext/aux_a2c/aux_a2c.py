"""AuxA2C: A2C with the auxiliary heads of :mod:`sb3_ext.aux_heads`."""

from __future__ import annotations

from typing import TypeVar

from stable_baselines3 import A2C
from stable_baselines3.common.type_aliases import MaybeCallback

from sb3_ext.aux_heads.mixin import AuxiliaryHeadsMixin

SelfAuxA2C = TypeVar("SelfAuxA2C", bound="AuxA2C")


class AuxA2C(AuxiliaryHeadsMixin, A2C):
    """A2C with a dynamics head, a behaviour prior fitted on offline data and offline value targets.

    See :class:`~sb3_ext.aux_heads.AuxiliaryHeadsMixin`; everything else is SB3's A2C. The
    auxiliary phase uses the whole rollout as one minibatch unless ``aux_batch_size`` is given.
    """

    def learn(
        self: SelfAuxA2C,
        total_timesteps: int,
        callback: MaybeCallback = None,
        log_interval: int = 1,
        tb_log_name: str = "AuxA2C",
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
    ) -> SelfAuxA2C:
        return super().learn(
            total_timesteps=total_timesteps,
            callback=callback,
            log_interval=log_interval,
            tb_log_name=tb_log_name,
            reset_num_timesteps=reset_num_timesteps,
            progress_bar=progress_bar,
        )
