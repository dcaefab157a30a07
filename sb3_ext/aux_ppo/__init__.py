"""AuxPPO: PPO with dynamics, behaviour-prior and offline-value auxiliary heads."""

from sb3_ext.aux_heads.policies import AuxiliaryActorCriticPolicy
from sb3_ext.aux_ppo.aux_ppo import AuxPPO

__all__ = ["AuxPPO", "AuxiliaryActorCriticPolicy"]
