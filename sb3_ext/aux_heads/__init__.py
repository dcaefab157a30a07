"""On-policy auxiliary heads: dynamics, behaviour prior and offline value targets.

The algorithms that train them are :class:`sb3_ext.aux_ppo.AuxPPO` and :class:`sb3_ext.aux_a2c.AuxA2C`.
"""

from sb3_ext.aux_heads.mixin import AuxiliaryHeadsMixin
from sb3_ext.aux_heads.offline import OfflineTransitions, ReturnTargets, return_targets
from sb3_ext.aux_heads.policies import AuxiliaryActorCriticPolicy

__all__ = ["AuxiliaryActorCriticPolicy", "AuxiliaryHeadsMixin", "OfflineTransitions", "ReturnTargets", "return_targets"]
