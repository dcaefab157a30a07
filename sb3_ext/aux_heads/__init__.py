"""Auxiliary heads for on-policy algorithms: AuxPPO and AuxA2C.

The feature in one folder, as sb3-contrib keeps an algorithm: the policy with its dynamics and
behaviour-prior heads (``policies.py``), the offline dataset and its return targets
(``offline.py``), the auxiliary phase both algorithms run after their own update (``mixin.py``)
and the two algorithms (``aux_ppo.py``, ``aux_a2c.py``), which only spell out their arguments.
"""

from sb3_ext.aux_heads.aux_a2c import AuxA2C
from sb3_ext.aux_heads.aux_ppo import AuxPPO
from sb3_ext.aux_heads.mixin import AuxiliaryHeadsMixin
from sb3_ext.aux_heads.offline import OfflineTransitions, ReturnTargets, return_targets
from sb3_ext.aux_heads.policies import AuxiliaryActorCriticPolicy

__all__ = [
    "AuxA2C",
    "AuxPPO",
    "AuxiliaryActorCriticPolicy",
    "AuxiliaryHeadsMixin",
    "OfflineTransitions",
    "ReturnTargets",
    "return_targets",
]
