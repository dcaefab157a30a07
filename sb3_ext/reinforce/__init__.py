"""REINFORCE: Monte-Carlo policy gradient on complete episodes."""

from sb3_ext.reinforce.buffers import EpisodicDictRolloutBuffer, EpisodicRolloutBuffer
from sb3_ext.reinforce.policies import CnnPolicy, MlpPolicy, MultiInputPolicy
from sb3_ext.reinforce.reinforce import REINFORCE

__all__ = ["REINFORCE", "CnnPolicy", "EpisodicDictRolloutBuffer", "EpisodicRolloutBuffer", "MlpPolicy", "MultiInputPolicy"]
